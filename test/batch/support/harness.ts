import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import type { Redis } from "ioredis";
import OpenAI from "openai";
import { pino } from "pino";
import { NO_REDIS_TLS_FILES, RedisKeys, connectRedis } from "@corral/shared";
import { loadConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import { loadConfig as loadWorkerConfig, startWorker, type RunningWorker } from "@corral/worker";
import { STORIES, repoRootDir, sharedModelsDir } from "../../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../../support/redis.js";

export { STORIES };

export const API_KEY = "sk-corral-batch-test-0001";
export const OTHER_KEY = "sk-corral-batch-test-0002";

/** stories260K with a small context and two sequences: short lines run quickly on one CPU thread. */
const MODELS_YAML = `models:
  - file: ${STORIES}.gguf
    context_size: 256
    sequences: 2
`;

/** Short batch timings so tests do not wait on production defaults. */
const SCHEDULER_ENV = {
  CORRAL_BATCH_LOOP_MS: "100",
  CORRAL_BATCH_LEASE_MS: "2000",
  CORRAL_BATCH_CANCEL_GRACE_MS: "5000",
};

/** Short stall timings, so a job of a killed slot comes back within seconds. */
const WORKER_ENV = {
  CORRAL_CPU: "true",
  CORRAL_CPU_SLOTS: "1",
  CORRAL_THREADS: "1",
  CORRAL_WORKER_METRICS_PORT: "0",
  CORRAL_HEARTBEAT_MS: "500",
  CORRAL_DRAIN_MS: "2s",
  CORRAL_LOCK_DURATION_MS: "2000",
  CORRAL_STALLED_INTERVAL_MS: "1000",
  CORRAL_NVIDIA_SMI: "/nonexistent/nvidia-smi",
};

/** The scheduler under test: in this process, or a child process that can be killed. */
export interface SchedulerHandle {
  url: string;
  /** The child's process (child schedulers only). */
  process: ChildProcess | null;
  close(): Promise<void>;
}

export interface BatchStack {
  url: string;
  baseURL: string;
  prefix: string;
  keys: RedisKeys;
  redisUrl: string;
  /** A plain Redis client for assertions. */
  redis: Redis;
  dataDir: string;
  modelsDir: string;
  scheduler: SchedulerHandle;
  worker: RunningWorker | null;
  /** The environment the scheduler was started with. */
  schedulerEnv: Record<string, string>;
  client(options?: { apiKey?: string }): OpenAI;
  /** Starts a worker (one CPU slot) if none runs. */
  startWorker(): Promise<RunningWorker>;
  /** Kills a child scheduler with SIGKILL and starts a new one on the same port. */
  restartScheduler(): Promise<void>;
  close(): Promise<void>;
}

export interface BatchStackOptions {
  /** Start a worker right away. @defaultValue true */
  worker?: boolean;
  /** Run the scheduler as a child process (so it can be killed). @defaultValue false */
  child?: boolean;
  /** Extra scheduler variables. */
  env?: Record<string, string>;
  /** Redis to use (a Sentinel or Cluster URL included). @defaultValue the test Redis */
  redisUrl?: string;
  /** Extra worker variables. */
  workerEnv?: Record<string, string>;
}

const logLevel = (): string => process.env.CORRAL_TEST_LOG_LEVEL ?? "silent";

/** A real scheduler and (by default) a real CPU worker on real Redis, under a fresh prefix, with a temp data folder. */
export async function startBatchStack(options: BatchStackOptions = {}): Promise<BatchStack> {
  const redisUrl = options.redisUrl ?? (await testRedis()).url;
  const prefix = uniquePrefix("batch");
  const keys = new RedisKeys(prefix);
  const modelsDir = await mkdtemp(join(tmpdir(), "corral-batch-models-"));
  await symlink(join(sharedModelsDir(), `${STORIES}.gguf`), join(modelsDir, `${STORIES}.gguf`));
  await writeFile(join(modelsDir, "models.yaml"), MODELS_YAML);
  const dataDir = await mkdtemp(join(tmpdir(), "corral-batch-data-"));
  const port = await getPort({ host: "127.0.0.1" });
  const schedulerEnv: Record<string, string> = {
    CORRAL_REDIS_URL: redisUrl,
    CORRAL_PREFIX: prefix,
    CORRAL_MODELS_DIR: modelsDir,
    CORRAL_DATA_DIR: dataDir,
    CORRAL_PORT: String(port),
    CORRAL_LOG_LEVEL: logLevel(),
    CORRAL_API_KEYS: `lab:${API_KEY},other:${OTHER_KEY}`,
    ...SCHEDULER_ENV,
    ...options.env,
  };
  const child = options.child ?? false;
  let scheduler = child ? await startChildScheduler(schedulerEnv) : await startInProcess(schedulerEnv);
  let worker: RunningWorker | null = null;
  const redis = connectRedis(redisUrl, NO_REDIS_TLS_FILES, { maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined); // a throwaway topology may lose nodes on purpose

  const stack: BatchStack = {
    url: scheduler.url,
    baseURL: `${scheduler.url}/v1`,
    prefix,
    keys,
    redisUrl,
    redis,
    dataDir,
    modelsDir,
    get scheduler() {
      return scheduler;
    },
    get worker() {
      return worker;
    },
    schedulerEnv,
    client: (clientOptions = {}) =>
      new OpenAI({
        baseURL: `${scheduler.url}/v1`,
        apiKey: clientOptions.apiKey ?? API_KEY,
        maxRetries: 0,
        timeout: 120_000,
      }),
    async startWorker() {
      worker ??= await startWorker(
        loadWorkerConfig({
          CORRAL_REDIS_URL: redisUrl,
          CORRAL_PREFIX: prefix,
          CORRAL_MODELS_DIR: modelsDir,
          CORRAL_LOG_LEVEL: logLevel(),
          CORRAL_WORKER_ID: "batch-test",
          ...WORKER_ENV,
          ...options.workerEnv,
        }),
        { logger: pino({ level: logLevel() }), restartInitialMs: 200 },
      );
      return worker;
    },
    async restartScheduler() {
      if (!scheduler.process) throw new Error("restartScheduler needs a child scheduler");
      const exited = new Promise((resolve) => scheduler.process!.once("exit", resolve));
      scheduler.process.kill("SIGKILL");
      await exited;
      scheduler = await startChildScheduler(schedulerEnv);
    },
    async close() {
      try {
        await worker?.close();
      } finally {
        await scheduler.close();
        redis.disconnect();
        await cleanupPrefix(redisUrl, prefix);
        await rm(modelsDir, { recursive: true, force: true });
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
  if (options.worker ?? true) {
    try {
      await stack.startWorker();
    } catch (error) {
      await scheduler.close();
      throw error;
    }
  }
  return stack;
}

async function startInProcess(env: Record<string, string>): Promise<SchedulerHandle> {
  const running: RunningScheduler = await startScheduler(loadConfig(env), {
    logger: pino({ level: logLevel() }),
    shutdownGraceMs: 2000,
  });
  return { url: running.url, process: null, close: () => running.close() };
}

/** `main()` of @corral/scheduler in a child process, as `corral scheduler` runs it. */
async function startChildScheduler(env: Record<string, string>): Promise<SchedulerHandle> {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./scheduler-main.mjs", import.meta.url))], {
    cwd: repoRootDir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${env.CORRAL_PORT}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("the scheduler child exited at start");
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("the scheduler child did not answer /healthz within 30 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    process: child,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A JSONL input file: one line per request. */
export const jsonl = (lines: readonly unknown[]): string => lines.map((line) => JSON.stringify(line)).join("\n") + "\n";

/** A chat request line for stories260K. */
export const chatLine = (customId: string, extra: Record<string, unknown> = {}) => ({
  custom_id: customId,
  method: "POST",
  url: "/v1/chat/completions",
  body: {
    model: STORIES,
    messages: [{ role: "user", content: `Once upon a time ${customId}` }],
    max_tokens: 8,
    temperature: 0,
    ...extra,
  },
});

/** A completion request line for stories260K. */
export const completionLine = (customId: string, extra: Record<string, unknown> = {}) => ({
  custom_id: customId,
  method: "POST",
  url: "/v1/completions",
  body: { model: STORIES, prompt: `Once upon a time ${customId}`, max_tokens: 8, temperature: 0, ...extra },
});

/** Polls the batch until `done` holds (default: a final status). */
export async function waitForBatch(
  client: OpenAI,
  id: string,
  done: (batch: OpenAI.Batches.Batch) => boolean = (b) =>
    ["completed", "failed", "cancelled", "expired"].includes(b.status),
  timeoutMs = 180_000,
): Promise<OpenAI.Batches.Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (done(batch)) return batch;
    if (Date.now() > deadline)
      throw new Error(
        `batch ${id} is still ${batch.status} after ${timeoutMs} ms: ${JSON.stringify(batch.request_counts)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A file's content as parsed JSONL lines. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- assertions walk the OpenAI shapes freely
export async function readJsonl(client: OpenAI, fileId: string): Promise<any[]> {
  const response = await client.files.content(fileId);
  const text = await response.text();
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}
