import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { STORIES, TINY_RANDOM, repoRootDir, sharedModelsDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import { request, startApi, storiesJob, tempModelsDir } from "./harness.js";

const MAIN = join(repoRootDir, "apps/scheduler/dist/main-cli.js");

describe("the scheduler process: shutdown and signals", () => {
  test("close() answers a long poll in flight with the current record, then stops accepting", async () => {
    const api = await startApi();
    let closed = false;
    try {
      const job = await api.request("POST", "/v1/jobs", { body: storiesJob() });
      const polled = api.request("GET", `/v1/jobs/${job.json.id}?wait=60`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await api.scheduler.close();
      closed = true;
      const response = await polled;
      assert.equal(response.status, 200);
      assert.equal(response.json.status, "queued");
      await assert.rejects(request(api.url, "GET", "/healthz"));
      await api.scheduler.close(); // idempotent
    } finally {
      if (!closed) await api.scheduler.close();
      await api.close();
    }
  });

  test("the built main exits 0 on SIGTERM after serving", async () => {
    const models = await tempModelsDir();
    const main = await startMain({ CORRAL_MODELS_DIR: models.dir });
    try {
      const health = await request(main.url, "GET", "/healthz");
      assert.equal(health.status, 200);
      main.child.kill("SIGTERM");
      const [code, signal] = (await once(main.child, "exit")) as [number | null, NodeJS.Signals | null];
      assert.equal(signal, null);
      assert.equal(code, 0, main.stderr());
    } finally {
      await main.stop();
      await models.remove();
    }
  });

  test("SIGHUP to the built main scans the models folder again (periodic rescans and the watch off)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "corral-sighup-models-"));
    await symlink(join(sharedModelsDir(), `${STORIES}.gguf`), join(dir, `${STORIES}.gguf`));
    const main = await startMain({
      CORRAL_MODELS_DIR: dir,
      CORRAL_CATALOG_RESCAN_MS: "0",
      CORRAL_CATALOG_WATCH: "false",
    });
    const modelIds = async () =>
      ((await request(main.url, "GET", "/v1/models")).json.data as { id: string }[]).map((m) => m.id).sort();
    try {
      assert.deepEqual(await modelIds(), [STORIES]);
      await symlink(join(sharedModelsDir(), `${TINY_RANDOM}.gguf`), join(dir, `${TINY_RANDOM}.gguf`));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await modelIds(), [STORIES], "nothing rescans on its own");
      main.child.kill("SIGHUP");
      let ids = await modelIds();
      for (let i = 0; i < 100 && ids.length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        ids = await modelIds();
      }
      assert.deepEqual(ids, [TINY_RANDOM, STORIES].sort());
      assert.equal(main.child.exitCode, null, "SIGHUP does not stop the scheduler");
      assert.match(main.stdout(), /"signal":"SIGHUP"/);
    } finally {
      await main.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a bad configuration prints the variable and exits 2", async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, CORRAL_PORT: "eighty" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 2);
    assert.match(stderr, /CORRAL_PORT/);
    assert.match(stderr, /eighty/);
  });
});

/** The built scheduler main as a child process on the test Redis, once it listens. */
async function startMain(env: Record<string, string>) {
  const redis = await testRedis();
  const prefix = uniquePrefix("api-main");
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      CORRAL_REDIS_URL: redis.url,
      CORRAL_PREFIX: prefix,
      CORRAL_PORT: "0",
      CORRAL_LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await cleanupPrefix(redis.url, prefix);
  };
  const lines = createInterface({ input: child.stdout });
  let url: string | undefined;
  for await (const line of lines) {
    stdout += `${line}\n`;
    const entry = JSON.parse(line) as { msg?: string; url?: string };
    if (entry.msg === "scheduler listening") {
      url = entry.url;
      break;
    }
  }
  if (!url) {
    await stop();
    assert.fail(`no "scheduler listening" line; stderr: ${stderr}`);
  }
  // Keep reading the log after the listening line.
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  return { child, url, stop, stderr: () => stderr, stdout: () => stdout };
}
