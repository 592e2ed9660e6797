import { mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { pino } from "pino";
import { RedisKeys, type JobRecord } from "@corral/shared";
import { loadConfig, startScheduler, type RunningScheduler } from "@corral/scheduler";
import { sharedModelsDir } from "../support/models.js";
import { cleanupPrefix, testRedis, uniquePrefix } from "../support/redis.js";

/** A real scheduler on a random port, on real Redis, with its own prefix and models folder. */
export interface ApiHarness {
  url: string;
  prefix: string;
  keys: RedisKeys;
  redisUrl: string;
  /** A plain client for assertions (not the scheduler's). */
  redis: Redis;
  scheduler: RunningScheduler;
  /** The scheduler's models folder (symlinks to the shared tiny models), removed on close. */
  modelsDir: string;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  /** Closes the scheduler, deletes the prefix's keys and the models folder. */
  close(): Promise<void>;
}

export interface RequestOptions {
  /** JSON-encoded unless a string or Buffer. */
  body?: unknown;
  /** A Bearer key. */
  key?: string;
  headers?: Record<string, string>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON, or undefined when the body is not JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A temp folder of symlinks to the tiny shared GGUF models. */
export async function tempModelsDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "corral-api-models-"));
  const source = sharedModelsDir();
  for (const name of await readdir(source)) {
    if (name.endsWith(".gguf")) await symlink(join(source, name), join(dir, name));
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface StartApiOptions {
  /** Extra CORRAL_* variables. */
  env?: Record<string, string>;
  /** Redis to use. @defaultValue the test Redis */
  redisUrl?: string;
  /** Options of the harness's own Redis clients (TLS for a `rediss://` Redis). */
  redisOptions?: RedisOptions;
}

export async function startApi(options: StartApiOptions = {}): Promise<ApiHarness> {
  const redisUrl = options.redisUrl ?? (await testRedis()).url;
  // A test may choose the prefix (to seed Redis before the scheduler starts).
  const prefix = options.env?.CORRAL_PREFIX ?? uniquePrefix("api");
  const models = await tempModelsDir();
  const config = loadConfig({
    CORRAL_REDIS_URL: redisUrl,
    CORRAL_PREFIX: prefix,
    CORRAL_MODELS_DIR: models.dir,
    CORRAL_PORT: "0",
    CORRAL_LOG_LEVEL: "silent",
    ...options.env,
  });
  const scheduler = await startScheduler(config, { logger: pino({ level: "silent" }) });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, ...options.redisOptions });
  redis.on("error", () => {}); // a throwaway Redis may be stopped on purpose
  const keys = new RedisKeys(prefix);
  let closed = false;
  return {
    url: scheduler.url,
    prefix,
    keys,
    redisUrl,
    redis,
    scheduler,
    modelsDir: models.dir,
    request: (method, path, requestOptions) => request(scheduler.url, method, path, requestOptions),
    async close() {
      if (closed) return;
      closed = true;
      await scheduler.close();
      redis.disconnect();
      try {
        await cleanupPrefix(redisUrl, prefix, options.redisOptions);
      } catch {
        // Redis may be a throwaway server that is gone by now.
      }
      await models.remove();
    },
  };
}

export async function request(
  base: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Buffer | undefined;
  if (options.body !== undefined) {
    if (typeof options.body === "string" || Buffer.isBuffer(options.body)) body = options.body;
    else body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A valid native job request for the tiny stories model. */
export const storiesJob = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: "stories260K",
  prompt: "Once upon a time",
  max_tokens: 16,
  temperature: 0,
  ...extra,
});

/** Asserts the OpenAI error shape and returns its `error`. */
export function errorOf(response: ApiResponse): { message: string; type: string; param: string | null; code: string } {
  const error = response.json?.error;
  if (!error || typeof error.message !== "string" || typeof error.type !== "string" || !("param" in error)) {
    throw new Error(`expected an error body, got ${response.status} ${response.text.slice(0, 300)}`);
  }
  return error;
}

export type { JobRecord };
