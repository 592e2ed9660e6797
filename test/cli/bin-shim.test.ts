import { spawnSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CORRAL_BIN } from "./run-corral.js";

const PROJECTS = ["packages/shared", "packages/llama", "apps/scheduler", "apps/worker", "apps/cli"];

/**
 * A stand-in `tsc`: records that it ran, then writes each project's dist/.tsbuildinfo and
 * a dist/main.js for the CLI that prints its arguments.
 */
const FAKE_TSC = `
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
const repo = process.argv[process.argv.indexOf("-b") + 1];
appendFileSync(join(repo, "tsc.log"), "build\\n");
console.log("tsc: 0 errors");
for (const project of ${JSON.stringify(PROJECTS)}) {
  mkdirSync(join(repo, project, "dist"), { recursive: true });
  writeFileSync(join(repo, project, "dist", ".tsbuildinfo"), "{}");
}
writeFileSync(
  join(repo, "apps/cli/dist/main.js"),
  "export async function main(argv) { console.log('main ' + argv.join(' ')); return 3; }",
);
`;

/** A copy of the repository's shape: sources, tsconfigs, the real bin, and the fake tsc. */
async function fakeRepo(root: string): Promise<void> {
  for (const project of PROJECTS) {
    await mkdir(join(root, project, "src", "nested"), { recursive: true });
    await writeFile(join(root, project, "tsconfig.json"), "{}");
    await writeFile(join(root, project, "src", "index.ts"), "export {};\n");
    await writeFile(join(root, project, "src", "nested", "deep.ts"), "export {};\n");
  }
  await mkdir(join(root, "apps/cli/bin"), { recursive: true });
  await copyFile(CORRAL_BIN, join(root, "apps/cli/bin/corral.js"));
  await mkdir(join(root, "node_modules/typescript/bin"), { recursive: true });
  await writeFile(join(root, "node_modules/typescript/bin/tsc"), FAKE_TSC);
  await writeFile(join(root, "package.json"), JSON.stringify({ type: "module" }));
}

describe("bin/corral.js", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "corral-shim-"));
    await fakeRepo(root);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const run = (...args: string[]) => {
    const env = { ...process.env };
    delete env.CORRAL_SKIP_BUILD;
    return spawnSync(process.execPath, [join(root, "apps/cli/bin/corral.js"), ...args], { env, encoding: "utf8" });
  };
  const builds = async () => (await readFile(join(root, "tsc.log"), "utf8").catch(() => "")).split("\n").length - 1;

  test("builds once on a fresh clone, says so on stderr, then runs dist/main.js with the arguments", async () => {
    const first = run("gpus", "--json");
    assert.equal(first.status, 3, first.stderr);
    assert.match(first.stderr, /building Corral \(first run\)/);
    assert.equal(first.stdout.trim(), "main gpus --json", "tsc's report goes to stderr, not stdout");
    assert.match(first.stderr, /tsc: 0 errors/);
    assert.equal(await builds(), 1);

    const second = run("--help");
    assert.equal(second.status, 3);
    assert.equal(second.stderr, "");
    assert.equal(await builds(), 1);
  });

  /** Makes every build look a minute old. */
  const ageBuilds = async () => {
    const old = new Date(Date.now() - 60_000);
    for (const project of PROJECTS) await utimes(join(root, project, "dist", ".tsbuildinfo"), old, old);
  };

  test("rebuilds when a source (however deep) or a tsconfig is newer than the build", async () => {
    await ageBuilds();
    await utimes(join(root, "apps/worker/src/nested/deep.ts"), new Date(), new Date());
    const afterEdit = run();
    assert.match(afterEdit.stderr, /building Corral \(sources changed\)/);
    assert.equal(await builds(), 2);
    assert.equal(run().stderr, "");

    await ageBuilds();
    await utimes(join(root, "packages/shared/tsconfig.json"), new Date(), new Date());
    run();
    assert.equal(await builds(), 3);
  });

  test("CORRAL_SKIP_BUILD=1 never builds", async () => {
    await ageBuilds();
    await utimes(join(root, "apps/cli/src/index.ts"), new Date(), new Date());
    const result = spawnSync(process.execPath, [join(root, "apps/cli/bin/corral.js")], {
      env: { ...process.env, CORRAL_SKIP_BUILD: "1" },
      encoding: "utf8",
    });
    assert.equal(result.status, 3);
    assert.equal(await builds(), 3);
  });
});
