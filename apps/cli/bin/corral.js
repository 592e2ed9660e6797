#!/usr/bin/env node
// The `corral` command. On a fresh clone nothing is compiled yet, so this shim builds
// the TypeScript projects once (tsc -b) when a dist/ is missing or older than its
// sources, then hands over to dist/main.js. The check stats a few dozen files.
// Set CORRAL_SKIP_BUILD=1 to never build (tests that run after `npm run build` do).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const cliDir = dirname(dirname(fileURLToPath(import.meta.url)));
const repo = dirname(dirname(cliDir));
const projects = ["packages/shared", "packages/llama", "apps/scheduler", "apps/worker", "apps/cli"];

/** Newest modification time (ms) of the .ts files under `dir`, 0 when there are none. */
function newestSource(dir) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** A project is stale when its build info is missing or older than a source or its tsconfig. */
function isStale(project) {
  const root = join(repo, project);
  if (!existsSync(join(root, "src"))) return false; // installed without sources: nothing to build
  const info = join(root, "dist", ".tsbuildinfo");
  if (!existsSync(info)) return true;
  const built = statSync(info).mtimeMs;
  const tsconfig = join(root, "tsconfig.json");
  return (existsSync(tsconfig) && statSync(tsconfig).mtimeMs > built) || newestSource(join(root, "src")) > built;
}

function buildIfNeeded() {
  if (process.env.CORRAL_SKIP_BUILD === "1") return;
  if (!projects.some(isStale)) return;
  const tsc = join(repo, "node_modules", "typescript", "bin", "tsc");
  const entry = join(cliDir, "dist", "main.js");
  if (!existsSync(tsc)) {
    if (existsSync(entry)) return; // no compiler (production install): run what is there
    console.error("corral: dist/ is missing and TypeScript is not installed; run `npm ci` in the repository first");
    process.exit(1);
  }
  const first = !existsSync(entry);
  console.error(first ? "building Corral (first run)…" : "building Corral (sources changed)…");
  // tsc reports on stdout; send it to stderr so that stdout stays the command's own output.
  const result = spawnSync(process.execPath, [tsc, "-b", repo], { cwd: repo, stdio: ["ignore", 2, 2] });
  if (result.status !== 0) {
    if (!existsSync(entry)) {
      console.error("corral: the TypeScript build failed (see above); fix it and run `npm run build`");
      process.exit(1);
    }
    console.error("corral: the TypeScript build reported errors; running the last good build");
  }
}

buildIfNeeded();
const { main } = await import(pathToFileURL(join(cliDir, "dist", "main.js")).href);
process.exitCode = await main(process.argv.slice(2), process.env);
