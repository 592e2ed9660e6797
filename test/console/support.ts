import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pino } from "pino";
import { RedisKeys, type WorkerState } from "@corral/shared";
import { loadConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import { loadConfig as loadWorkerConfig, startWorker, type RunningWorker } from "@corral/worker";
import { STORIES, sharedModelsDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";

/** The built console (apps/console/dist), which `npm test` builds first (`pretest`). */
export const CONSOLE_DIST = fileURLToPath(new URL("../../apps/console/dist/", import.meta.url));

/** Throws, saying how to build it, when the console was not built. */
export function builtConsole(): string {
  if (!existsSync(`${CONSOLE_DIST}index.html`)) {
    throw new Error("the console is not built: run `npm run build` (or `npm run build -w @corral/console`) first");
  }
  return CONSOLE_DIST;
}

export const LAB_KEY = "sk-console-lab-0123456789";
export const OTHER_KEY = "sk-console-other-0123456789";
export const ADMIN_KEY = "sk-console-admin-0123456789";

/** Where the browser tests write their screenshots (kept as CI artefacts). */
export const ARTIFACTS_DIR = fileURLToPath(new URL("../../test-results/console/", import.meta.url));

/**
 * Debian's chromium (`apt-get install chromium`; .ci/run installs it), or the browser
 * named by CORRAL_CHROMIUM.
 */
export function chromiumPath(): string {
  const named = process.env.CORRAL_CHROMIUM;
  if (named) return named;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error("no chromium found: install Debian's `chromium` package (or set CORRAL_CHROMIUM)");
}

/** A real scheduler on real Redis with the console, and a real CPU worker on stories260K started on demand. */
export interface ConsoleStack {
  url: string;
  scheduler: RunningScheduler;
  /** Starts the worker (one CPU slot, stories260K with two sequences). Idempotent. */
  startWorker(): Promise<RunningWorker>;
  /** Writes a worker slot's heartbeat as a slot would (a stand-in slot: no process behind it). */
  heartbeat(state: WorkerState, ttlSeconds: number): Promise<void>;
  /** Deletes a heartbeat, as its TTL running out would. */
  expire(id: string): Promise<void>;
  /** A JSON request to the API with a key. */
  request(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; json: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): Promise<void>;
}

export async function startConsoleStack(): Promise<ConsoleStack> {
  builtConsole();
  const { url: redisUrl } = await testRedis();
  const prefix = uniquePrefix("console");
  const modelsDir = await mkdtemp(join(tmpdir(), "corral-console-models-"));
  const dataDir = await mkdtemp(join(tmpdir(), "corral-console-data-"));
  await symlink(join(sharedModelsDir(), `${STORIES}.gguf`), join(modelsDir, `${STORIES}.gguf`));
  await writeFile(
    join(modelsDir, "models.yaml"),
    `models:\n  - file: ${STORIES}.gguf\n    context_size: 512\n    sequences: 2\n`,
  );
  const logLevel = process.env.CORRAL_TEST_LOG_LEVEL ?? "silent";
  const scheduler = await startScheduler(
    loadConfig({
      CORRAL_REDIS_URL: redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: modelsDir,
      CORRAL_DATA_DIR: dataDir,
      CORRAL_PORT: "0",
      CORRAL_LOG_LEVEL: logLevel,
      CORRAL_API_KEYS: `lab:${LAB_KEY},other:${OTHER_KEY}`,
      CORRAL_ADMIN_KEY: ADMIN_KEY,
      CORRAL_BATCH_LOOP_MS: "100",
    }),
    { logger: pino({ level: logLevel }), shutdownGraceMs: 2000 },
  );
  let worker: RunningWorker | null = null;
  const keys = new RedisKeys(prefix);
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  return {
    url: scheduler.url,
    scheduler,
    async startWorker() {
      worker ??= await startWorker(
        loadWorkerConfig({
          CORRAL_REDIS_URL: redisUrl,
          CORRAL_PREFIX: prefix,
          CORRAL_MODELS_DIR: modelsDir,
          CORRAL_LOG_LEVEL: logLevel,
          CORRAL_CPU: "true",
          CORRAL_CPU_SLOTS: "1",
          CORRAL_THREADS: "1",
          CORRAL_WORKER_ID: "console-test",
          CORRAL_WORKER_METRICS_PORT: "0",
          CORRAL_HEARTBEAT_MS: "500",
          CORRAL_DRAIN_MS: "2s",
          CORRAL_NVIDIA_SMI: "/nonexistent/nvidia-smi",
        }),
        { logger: pino({ level: logLevel }) },
      );
      return worker;
    },
    async heartbeat(state, ttlSeconds) {
      await redis
        .multi()
        .set(keys.worker(state.id), JSON.stringify(state), "EX", ttlSeconds)
        .sadd(keys.workers, state.id)
        .exec();
    },
    async expire(id) {
      await redis.del(keys.worker(id));
    },
    async request(method, path, key, body) {
      const response = await fetch(`${scheduler.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: response.status, json };
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
}

export async function artifactsDir(): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  return ARTIFACTS_DIR;
}
