import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { pino } from "pino";
import { JobRecord, RedisKeys } from "@corral/shared";
import { loadConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import { loadConfig as loadWorkerConfig, startWorker, type RunningWorker } from "@corral/worker";
import { STORIES, TINY_RANDOM, sharedModelsDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";

export { STORIES, TINY_RANDOM };

export const API_KEY = "sk-corral-openai-test-0001";
export const OTHER_KEY = "sk-corral-openai-test-0002";

/**
 * Both tiny models with one sequence each: at temperature 0 a single sequence is
 * deterministic, so streamed and non-streamed runs of a prompt give the same text.
 */
const MODELS_YAML = `models:
  - file: ${STORIES}.gguf
    context_size: 1024
    sequences: 1
  - file: ${TINY_RANDOM}.gguf
    context_size: 1024
    sequences: 1
`;

/** A real scheduler (and, unless `worker: false`, a real CPU worker) on real Redis under a fresh prefix. */
export interface OpenAIStack {
  url: string;
  /** `${url}/v1`, the `baseURL` of OpenAI clients. */
  baseURL: string;
  prefix: string;
  keys: RedisKeys;
  /** A plain Redis client for assertions. */
  redis: Redis;
  scheduler: RunningScheduler;
  worker: RunningWorker | null;
  /** An `openai` client for the tenant's key, with retries off. */
  client(options?: { apiKey?: string }): OpenAI;
  /** `GET /v1/jobs/:id` as the tenant. */
  job(id: string): Promise<JobRecord>;
  /** Polls the job until `done` holds (default: a final status). */
  waitForJob(id: string, done?: (record: JobRecord) => boolean, timeoutMs?: number): Promise<JobRecord>;
  close(): Promise<void>;
}

export interface StartStackOptions {
  /** Start a worker (one CPU slot, one thread). @defaultValue true */
  worker?: boolean;
  /** Extra scheduler variables. */
  env?: Record<string, string>;
  /** Extra worker variables. */
  workerEnv?: Record<string, string>;
  /**
   * More GGUFs to serve (each copied in as `${id}.gguf`, one sequence, context 1024 unless
   * `context_size` says otherwise), beside the two tiny models.
   */
  models?: { id: string; path: string; context_size?: number }[];
  /** Link the shared `whisper/` folder (whisper.cpp test models) into the models folder. @defaultValue false */
  whisper?: boolean;
}

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export async function startStack(options: StartStackOptions = {}): Promise<OpenAIStack> {
  const { url: redisUrl } = await testRedis();
  const prefix = uniquePrefix("openai");
  const keys = new RedisKeys(prefix);
  const modelsDir = await mkdtemp(join(tmpdir(), "corral-openai-models-"));
  const shared = sharedModelsDir();
  for (const name of [STORIES, TINY_RANDOM])
    await symlink(join(shared, `${name}.gguf`), join(modelsDir, `${name}.gguf`));
  let yaml = MODELS_YAML;
  for (const extra of options.models ?? []) {
    await symlink(extra.path, join(modelsDir, `${extra.id}.gguf`));
    yaml += `  - file: ${extra.id}.gguf\n    context_size: ${extra.context_size ?? 1024}\n    sequences: 1\n`;
  }
  await writeFile(join(modelsDir, "models.yaml"), yaml);
  if (options.whisper) await symlink(join(shared, "whisper"), join(modelsDir, "whisper"));
  const logLevel = process.env.CORRAL_TEST_LOG_LEVEL ?? "silent";

  const scheduler = await startScheduler(
    loadConfig({
      CORRAL_REDIS_URL: redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: modelsDir,
      CORRAL_PORT: "0",
      CORRAL_LOG_LEVEL: logLevel,
      CORRAL_API_KEYS: `lab:${API_KEY},other:${OTHER_KEY}`,
      ...options.env,
    }),
    { logger: pino({ level: logLevel }), shutdownGraceMs: 2000 },
  );
  let worker: RunningWorker | null = null;
  if (options.worker ?? true) {
    try {
      worker = await startWorker(
        loadWorkerConfig({
          CORRAL_REDIS_URL: redisUrl,
          CORRAL_PREFIX: prefix,
          CORRAL_MODELS_DIR: modelsDir,
          CORRAL_LOG_LEVEL: logLevel,
          CORRAL_CPU: "true",
          CORRAL_CPU_SLOTS: "1",
          CORRAL_THREADS: "1",
          CORRAL_WORKER_ID: "openai-test",
          CORRAL_WORKER_METRICS_PORT: "0",
          CORRAL_HEARTBEAT_MS: "500",
          CORRAL_DRAIN_MS: "5s",
          CORRAL_NVIDIA_SMI: "/nonexistent/nvidia-smi",
          ...options.workerEnv,
        }),
        { logger: pino({ level: logLevel }) },
      );
    } catch (error) {
      await scheduler.close();
      throw error;
    }
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const baseURL = `${scheduler.url}/v1`;

  const job = async (id: string): Promise<JobRecord> => {
    const response = await fetch(`${baseURL}/jobs/${id}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    if (!response.ok) throw new Error(`GET /v1/jobs/${id}: ${response.status} ${await response.text()}`);
    return JobRecord.parse(await response.json());
  };

  let closed = false;
  return {
    url: scheduler.url,
    baseURL,
    prefix,
    keys,
    redis,
    scheduler,
    worker,
    client: (clientOptions = {}) =>
      new OpenAI({ baseURL, apiKey: clientOptions.apiKey ?? API_KEY, maxRetries: 0, timeout: 120_000 }),
    job,
    async waitForJob(id, done = (record) => FINAL.has(record.status), timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const record = await job(id);
        if (done(record)) return record;
        if (Date.now() > deadline) throw new Error(`job ${id} is still ${record.status} after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await worker?.close();
      } finally {
        await scheduler.close();
        redis.disconnect();
        await cleanupPrefix(redisUrl, prefix);
        await rm(modelsDir, { recursive: true, force: true });
      }
    },
  };
}
