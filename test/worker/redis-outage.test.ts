import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pino } from "pino";
import { parseJobEvent } from "@corral/shared";
import { loadConfig, startWorker, type RunningWorker } from "@corral/worker";
import { startApi, type ApiHarness } from "../api/harness.js";
import { sharedModelsDir, TINY_RANDOM } from "../support/models.js";
import { startRedisServer, type RedisServer } from "../support/redis.js";

/** Long enough to be mid-generation when Redis stops. */
const JOB = { model: TINY_RANDOM, prompt: "Hello", max_tokens: 3000, temperature: 0 } as const;
const MODELS_YAML = "models:\n  - file: llama-2-tiny-random.gguf\n    context_size: 4096\n";
const OUTAGE_MS = 10_000;

describe("a CPU slot through a 10 s Redis outage mid-job", () => {
  let server: RedisServer;
  let api: ApiHarness;
  let worker: RunningWorker;
  let modelsDir: string;
  let events: Redis;
  const finals: string[] = [];

  before(async () => {
    server = await startRedisServer();
    modelsDir = await mkdtemp(join(tmpdir(), "corral-outage-models-"));
    for (const name of await readdir(sharedModelsDir())) {
      if (name.endsWith(".gguf")) await symlink(join(sharedModelsDir(), name), join(modelsDir, name));
    }
    await writeFile(join(modelsDir, "models.yaml"), MODELS_YAML);
    api = await startApi({
      redisUrl: server.url,
      env: { CORRAL_MODELS_DIR: modelsDir, CORRAL_REDIS_COMMAND_TIMEOUT_MS: "1000" },
    });
    events = new Redis(server.url);
    events.on("error", () => {});
    await events.subscribe(api.keys.jobEventsChannel);
    events.on("message", (_channel: string, message: string) => finals.push(parseJobEvent(message).id));
    worker = await startWorker(
      loadConfig({
        CORRAL_REDIS_URL: server.url,
        CORRAL_PREFIX: api.prefix,
        CORRAL_MODELS_DIR: modelsDir,
        CORRAL_LOG_LEVEL: "silent",
        CORRAL_THREADS: "1",
        CORRAL_WORKER_ID: "outage-box",
        CORRAL_WORKER_METRICS_PORT: "0",
        CORRAL_CPU: "true",
        CORRAL_CPU_SLOTS: "1",
        CORRAL_HEARTBEAT_MS: "500",
      }),
      { logger: pino({ level: "silent" }) },
    );
  });

  after(async () => {
    server?.process.kill("SIGCONT");
    events?.disconnect();
    await worker?.close();
    await api?.close();
    await server?.stop();
    if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  });

  const record = async (id: string) => (await api.request("GET", `/v1/jobs/${id}`)).json;

  const waitFor = async (id: string, done: (r: { status: string }) => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await record(id);
      if (current && done(current)) return current;
      if (Date.now() > deadline) throw new Error(`job ${id} is still ${current?.status}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  test("the running job finishes once with its full result, a job queued before the outage runs, and new work is taken", async (t) => {
    const running = (await api.request("POST", "/v1/jobs", { body: JOB })).json;
    await waitFor(running.id, (r) => r.status === "running", 120_000);
    const queued = (await api.request("POST", "/v1/jobs", { body: { ...JOB, max_tokens: 16 } })).json;
    assert.ok(queued.id);

    server.process.kill("SIGSTOP");
    const stoppedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    server.process.kill("SIGCONT");
    const resumedAt = Date.now();

    const done = await waitFor(running.id, (r) => ["succeeded", "failed", "cancelled"].includes(r.status), 180_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal(done.result.usage.completion_tokens, JOB.max_tokens, "the whole generation, not a cut-off one");
    const second = await waitFor(queued.id, (r) => ["succeeded", "failed", "cancelled"].includes(r.status), 120_000);
    assert.equal(second.status, "succeeded", JSON.stringify(second.error));
    const fresh = (await api.request("POST", "/v1/jobs?wait=60", { body: { ...JOB, max_tokens: 8 } })).json;
    assert.equal(fresh.status, "succeeded", JSON.stringify(fresh.error));
    t.diagnostic(
      `outage ${resumedAt - stoppedAt} ms; the job finished ${done.finished_at - resumedAt} ms after Redis came back`,
    );

    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(finals.filter((id) => id === running.id).length, 1, "one final record for the job");
    assert.equal(finals.filter((id) => id === queued.id).length, 1, "one final record for the queued job");
    assert.equal(done.attempts, 1, "the outage cost no attempt");
  });
});
