import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { repoRootDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";
import { request, startApi, storiesJob, tempModelsDir } from "./harness.js";

const MAIN = join(repoRootDir, "apps/scheduler/dist/main-cli.js");

describe("shutdown", () => {
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
    const redis = await testRedis();
    const prefix = uniquePrefix("api-main");
    const models = await tempModelsDir();
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        CORRAL_REDIS_URL: redis.url,
        CORRAL_PREFIX: prefix,
        CORRAL_MODELS_DIR: models.dir,
        CORRAL_PORT: "0",
        CORRAL_LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const lines = createInterface({ input: child.stdout });
      let url: string | undefined;
      for await (const line of lines) {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === "scheduler listening") {
          url = entry.url;
          break;
        }
      }
      assert.ok(url, `no "scheduler listening" line; stderr: ${stderr}`);
      const health = await request(url, "GET", "/healthz");
      assert.equal(health.status, 200);
      child.stdout.resume();
      child.kill("SIGTERM");
      const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
      assert.equal(signal, null);
      assert.equal(code, 0, stderr);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await cleanupPrefix(redis.url, prefix);
      await models.remove();
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
