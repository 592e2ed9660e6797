import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pino } from "pino";
import { JobRecords, RedisKeys, type JobRecord } from "@corral/shared";
import { loadConfig, startWorker, type RunningWorker } from "@corral/worker";
import { startApi } from "../api/harness.js";
import { corralEnv, spawnCorral } from "../cli/run-corral.js";
import { sharedModelsDir, TINY_RANDOM } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";

/** Far more than the jobs can generate between the kill and the cancel. */
const MAX_TOKENS = 12_000;
const MODELS_YAML = "models:\n  - file: llama-2-tiny-random.gguf\n    context_size: 40000\n    sequences: 3\n";
const LEASE_MS = 2000;
/** Lease + the slots' 5 s sweep + a claim, with room for a loaded machine: "did not run to max_tokens". */
const CANCEL_BOUND_MS = 60_000;

interface Opened {
  /** The job ids from the 103 Early Hints (`x-corral-job-id`), before any token. */
  ids: Promise<string[]>;
  /** The response ends (or the connection breaks). */
  ended: Promise<void>;
}

/** POSTs `body` and resolves the job ids as soon as the scheduler sends its 103 Early Hints. */
function open(base: string, path: string, body: unknown): Opened {
  let gotIds!: (ids: string[]) => void;
  const ids = new Promise<string[]>((resolve) => (gotIds = resolve));
  const ended = new Promise<void>((resolve) => {
    const req = httpRequest(new URL(path, base), { method: "POST", headers: { "content-type": "application/json" } });
    req.on("information", (info) => {
      const header = info.headers["x-corral-job-id"];
      if (info.statusCode === 103 && typeof header === "string") gotIds(header.split(","));
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve());
      res.on("error", () => resolve());
      res.on("close", () => resolve());
    });
    req.on("error", () => resolve());
    req.end(JSON.stringify(body));
  });
  return { ids, ended };
}

async function startSchedulerProcess(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnCorral(["scheduler", "--port", "0"], corralEnv(env));
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the scheduler did not start: ${stderr}`)), 60_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /scheduler listening on (http:\/\/\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`the scheduler exited (${code}): ${stderr}`)));
  });
  child.stdout!.resume();
  return { child, url };
}

describe("a scheduler SIGKILLed with streaming chats and a waiting native job in flight", () => {
  let redisUrl: string;
  let prefix: string;
  let modelsDir: string;
  let redis: Redis;
  let records: JobRecords;
  let worker: RunningWorker;
  let scheduler: { child: ChildProcess; url: string };

  before(async () => {
    redisUrl = (await testRedis()).url;
    prefix = uniquePrefix("orphans");
    redis = new Redis(redisUrl);
    records = new JobRecords(redis, new RedisKeys(prefix));
    modelsDir = await mkdtemp(join(tmpdir(), "corral-orphan-models-"));
    for (const name of await readdir(sharedModelsDir())) {
      if (name.endsWith(".gguf")) await symlink(join(sharedModelsDir(), name), join(modelsDir, name));
    }
    await writeFile(join(modelsDir, "models.yaml"), MODELS_YAML);
    const env = {
      CORRAL_REDIS_URL: redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: modelsDir,
      CORRAL_INTERACTIVE_LEASE_MS: String(LEASE_MS),
    };
    scheduler = await startSchedulerProcess({ ...env, CORRAL_LOG_LEVEL: "info" });
    worker = await startWorker(
      loadConfig({
        ...env,
        CORRAL_LOG_LEVEL: "silent",
        CORRAL_THREADS: "1",
        CORRAL_WORKER_ID: "orphan-box",
        CORRAL_WORKER_METRICS_PORT: "0",
        CORRAL_CPU: "true",
        CORRAL_CPU_SLOTS: "1",
        CORRAL_HEARTBEAT_MS: "500",
      }),
      { logger: pino({ level: "silent" }) },
    );
  });

  after(async () => {
    if (scheduler?.child.exitCode === null) scheduler.child.kill("SIGKILL");
    await worker?.close();
    redis?.disconnect();
    await cleanupPrefix(redisUrl, prefix).catch(() => {});
    if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
  });

  const waitFor = async (id: string, done: (r: JobRecord) => boolean, timeoutMs: number): Promise<JobRecord> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const record = await records.get(id);
      if (record && done(record)) return record;
      if (Date.now() > deadline) throw new Error(`job ${id} is still ${record?.status}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  test("the streams' jobs end cancelled within lease + sweep, and the native job runs on and can be fetched by id", async (t) => {
    const chat = (i: number) => ({
      model: TINY_RANDOM,
      messages: [{ role: "user", content: `Tell story ${i}` }],
      max_tokens: MAX_TOKENS,
      temperature: 0,
      stream: true,
    });
    // Three run (three sequences), the fourth waits in its lane.
    const streams = [0, 1, 2, 3].map((i) => open(scheduler.url, "/v1/chat/completions", chat(i)));
    const streamIds = (await Promise.all(streams.map((s) => s.ids))).flat();
    assert.equal(streamIds.length, 4, "each stream got its job id before any token");
    const native = open(scheduler.url, "/v1/jobs?wait=60", {
      model: TINY_RANDOM,
      prompt: "Hello",
      max_tokens: 16,
      temperature: 0,
    });
    const [nativeId] = await native.ids;
    assert.ok(nativeId, "the waiting native request got its job id at once");
    // Three of the four run (which three is fair claim's: its order among one tenant's jobs
    // is their creation, not the order their ids came back in).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const now = await records.getMany(streamIds);
      if (now.filter((r) => r?.status === "running").length === 3) break;
      assert.ok(Date.now() < deadline, `three streams should run: ${now.map((r) => r?.status).join(", ")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    scheduler.child.kill("SIGKILL");
    const killedAt = Date.now();
    await Promise.all(streams.map((s) => s.ended));

    const ended = await Promise.all(
      streamIds.map((id) =>
        waitFor(id, (r) => ["succeeded", "failed", "cancelled"].includes(r.status), CANCEL_BOUND_MS),
      ),
    );
    for (const record of ended) {
      assert.equal(record.status, "cancelled", `${record.id}: ${JSON.stringify(record.error)}`);
      assert.ok(
        (record.result?.usage.completion_tokens ?? 0) < MAX_TOKENS,
        `${record.id} stopped before max_tokens (${record.result?.usage.completion_tokens})`,
      );
    }
    // The stream that waited in its lane is cancelled when a slot claims it, before it
    // generates (the sweep, 5 s later, would have let it write thousands of tokens).
    const queued = ended.filter((r) => r.started_at !== null && r.started_at > killedAt);
    assert.equal(queued.length, 1, "one stream's job started after the kill");
    assert.ok(
      queued[0]!.result!.usage.completion_tokens < 500,
      `the queued stream's job wrote ${queued[0]!.result!.usage.completion_tokens} tokens before it was cancelled`,
    );
    const latest = Math.max(...ended.map((r) => r.finished_at ?? 0));
    t.diagnostic(`the last orphaned job was cancelled ${latest - killedAt} ms after the kill (lease ${LEASE_MS} ms)`);

    // The native job was accepted: it runs on, and a client fetches it by id from another scheduler.
    const done = await waitFor(nativeId, (r) => ["succeeded", "failed", "cancelled"].includes(r.status), 120_000);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    const api = await startApi({ redisUrl, env: { CORRAL_PREFIX: prefix, CORRAL_MODELS_DIR: modelsDir } });
    try {
      const fetched = await api.request("GET", `/v1/jobs/${nativeId}`);
      assert.equal(fetched.status, 200);
      assert.equal(fetched.json.status, "succeeded");
      assert.ok(fetched.json.result.text.length > 0);
    } finally {
      await api.close();
    }
  });
});
