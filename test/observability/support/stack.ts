import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { loadConfig as loadSchedulerConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import { loadConfig as loadWorkerConfig, startWorker, type RunningWorker } from "@corral/worker";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../support/redis.js";
import {
  ADMIN_KEY,
  API_KEYS,
  MODEL,
  SHORT_CONTEXT_MODEL,
  TENANT_KEYS,
  fakeNvidiaSmi,
  makeModelsDir,
  submitJob,
  waitForJob,
  writeFakeGpuSpec,
  type ModelsDir,
} from "./fixtures.js";

/** A real scheduler and a real worker (one slot on a fake H100: real captured nvidia-smi output) on one Redis prefix. */
export interface Stack {
  scheduler: RunningScheduler;
  worker: RunningWorker;
  redisUrl: string;
  prefix: string;
  /** Stops both, removes the prefix and the temporary folders. Idempotent. */
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const redisUrl = (await testRedis()).url;
  const prefix = uniquePrefix("obs");
  const models: ModelsDir = await makeModelsDir();
  const dir = await mkdtemp(join(tmpdir(), "corral-obs-"));
  const spec = await writeFakeGpuSpec(dir);
  // The fake nvidia-smi reads its spec from its environment: the supervisor's discovery
  // runs it with this process's environment, the slots with `env`.
  process.env.CORRAL_FAKE_NVIDIA_SMI_SPEC = spec;
  const silent = pino({ level: "silent" });
  let scheduler: RunningScheduler | undefined;
  let worker: RunningWorker | undefined;
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      for (const step of [() => worker?.close(), () => scheduler?.close()]) {
        try {
          await step();
        } catch (error) {
          console.error("observability stack: close step failed", error);
        }
      }
      await cleanupPrefix(redisUrl, prefix);
      await models.remove();
      await rm(dir, { recursive: true, force: true });
    })();
    return closing;
  };
  try {
    scheduler = await startScheduler(
      loadSchedulerConfig({
        CORRAL_REDIS_URL: redisUrl,
        CORRAL_PREFIX: prefix,
        CORRAL_MODELS_DIR: models.path,
        CORRAL_PORT: "0",
        CORRAL_API_KEYS: API_KEYS,
        CORRAL_ADMIN_KEY: ADMIN_KEY,
        // A budget far above what the stack uses, so the budget panel has series.
        CORRAL_TENANT_TOKENS_PER_DAY: "acme:1000000",
        CORRAL_JOB_ATTEMPTS: "1",
        // The load's failing job is a prompt too long for its context, failed by the worker
        // (so the failure series exist): prompts are not counted at submit here.
        CORRAL_CHECK_PROMPT_LENGTH: "false",
        CORRAL_DATA_DIR: join(dir, "data"),
        CORRAL_BATCH_LOOP_MS: "100",
        CORRAL_LOG_LEVEL: "silent",
      }),
      { logger: silent },
    );
    const workerEnv = {
      CORRAL_REDIS_URL: redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: models.path,
      CORRAL_NVIDIA_SMI: fakeNvidiaSmi,
      CORRAL_WORKER_METRICS_PORT: "0",
      CORRAL_WORKER_ID: `obs-${randomBytes(3).toString("hex")}`,
      CORRAL_THREADS: "1",
      CORRAL_HEARTBEAT_MS: "500",
      CORRAL_LOG_LEVEL: "silent",
    };
    worker = await startWorker(loadWorkerConfig(workerEnv), {
      logger: silent,
      env: { ...process.env, ...workerEnv, CORRAL_FAKE_NVIDIA_SMI_SPEC: spec },
    });
    return { scheduler, worker, redisUrl, prefix, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export interface LoadOutcome {
  succeeded: number;
  failed: number;
}

/**
 * A small load through the HTTP API: five jobs from two tenants that succeed, and one
 * whose prompt cannot fit the 32-token context of `stories-ctx32`, which fails.
 */
export async function runLoad(stack: Stack): Promise<LoadOutcome> {
  const url = stack.scheduler.url;
  const good = [TENANT_KEYS.acme, TENANT_KEYS.acme, TENANT_KEYS.acme, TENANT_KEYS.globex, TENANT_KEYS.globex];
  const jobs = await Promise.all(
    good.map(async (key, i) => {
      const res = await submitJob(url, key, {
        model: MODEL,
        prompt: `Once upon a time, number ${i}`,
        max_tokens: 8,
        temperature: 0,
      });
      if (res.status !== 202 || !res.body.id)
        throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
      return { key, id: res.body.id };
    }),
  );
  const long = "Once upon a time there was a little girl who liked to play in the park with her dog. ".repeat(40);
  const bad = await submitJob(url, TENANT_KEYS.globex, {
    model: SHORT_CONTEXT_MODEL,
    prompt: long,
    max_tokens: 4,
    temperature: 0,
  });
  if (bad.status !== 202 || !bad.body.id) throw new Error(`submit failed: ${bad.status} ${JSON.stringify(bad.body)}`);
  jobs.push({ key: TENANT_KEYS.globex, id: bad.body.id });

  const records = await Promise.all(jobs.map((job) => waitForJob(url, job.key, job.id)));
  return {
    succeeded: records.filter((r) => r.status === "succeeded").length,
    failed: records.filter((r) => r.status === "failed").length,
  };
}

/** Whether the scheduler serves the batch API (`GET /v1/batches` is not a 404). */
export async function batchApiExists(stack: Stack): Promise<boolean> {
  const res = await fetch(`${stack.scheduler.url}/v1/batches`, {
    headers: { authorization: `Bearer ${TENANT_KEYS.acme}` },
  });
  await res.body?.cancel();
  return res.status !== 404;
}

/**
 * A two-line OpenAI-format batch: upload the JSONL file (`POST /v1/files`, purpose
 * batch), create the batch, and poll it until it is final. Returns its final status.
 */
export async function runBatch(stack: Stack, timeoutMs = 120_000): Promise<string> {
  const url = stack.scheduler.url;
  const auth = { authorization: `Bearer ${TENANT_KEYS.acme}` };
  const lines = [0, 1]
    .map((i) =>
      JSON.stringify({
        custom_id: `line-${i}`,
        method: "POST",
        url: "/v1/completions",
        body: { model: MODEL, prompt: `Once upon a time, batch line ${i}`, max_tokens: 4, temperature: 0 },
      }),
    )
    .join("\n");
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new Blob([`${lines}\n`], { type: "application/jsonl" }), "observability.jsonl");
  const uploaded = await fetch(`${url}/v1/files`, { method: "POST", headers: auth, body: form });
  const file = (await uploaded.json()) as { id?: string };
  if (!uploaded.ok || !file.id) throw new Error(`file upload failed: ${uploaded.status} ${JSON.stringify(file)}`);
  const created = await fetch(`${url}/v1/batches`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ input_file_id: file.id, endpoint: "/v1/completions", completion_window: "24h" }),
  });
  let batch = (await created.json()) as { id?: string; status?: string };
  if (!created.ok || !batch.id) throw new Error(`batch creation failed: ${created.status} ${JSON.stringify(batch)}`);
  const deadline = Date.now() + timeoutMs;
  while (!["completed", "failed", "expired", "cancelled"].includes(batch.status ?? "")) {
    if (Date.now() > deadline) throw new Error(`batch ${batch.id} still ${batch.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
    batch = (await (await fetch(`${url}/v1/batches/${batch.id}`, { headers: auth })).json()) as typeof batch;
  }
  return batch.status ?? "unknown";
}
