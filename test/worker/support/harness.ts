import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { Queue, type Job } from "bullmq";
import {
  FairQueue,
  HOLD_DELAY_MS,
  JobRecords,
  RedisKeys,
  bullPriority,
  estimateCost,
  laneName,
  queuedJobRecord,
  type CatalogModel,
  type JobPayload,
  type JobRecord,
  type JobSource,
} from "@corral/shared";
import { ModelCatalog } from "@corral/scheduler";
import { loadConfig, type SlotSpec, type WorkerConfig } from "@corral/worker";
import { cleanupPrefix, startRedisServer, testRedis, uniquePrefix } from "../../support/redis.js";
import { STORIES, TINY_RANDOM, sharedModelsDir } from "../../support/models.js";

export { STORIES, TINY_RANDOM };

/** What a test submits; the rest of the payload comes from the catalog and defaults. */
export interface SubmitInput {
  model: string;
  prompt?: string;
  messages?: JobPayload["messages"];
  max_tokens?: number;
  temperature?: number;
  stop?: string[];
  seed?: number;
  /** Client priority 1–100. @defaultValue 50 */
  priority?: number;
  source?: JobSource;
  /** BullMQ attempts. @defaultValue 3 */
  attempts?: number;
  stream?: boolean;
  /** @defaultValue "test" */
  tenant?: string;
  /** The tenant's most running jobs, as the scheduler stamps it. @defaultValue none */
  max_active?: number;
}

export interface Harness {
  url: string;
  prefix: string;
  keys: RedisKeys;
  redis: Redis;
  records: JobRecords;
  catalog: ModelCatalog;
  modelsDir: string;
  logger: Logger;
  queue(model: string): Queue<JobPayload>;
  /** Does what the scheduler does: record (queued) first, SADD the lane, then Queue.add. */
  submit(input: SubmitInput): Promise<JobRecord>;
  /** Polls the record until `done` says so (default: a final status), or throws after `timeoutMs`. */
  waitFor(id: string, done?: (record: JobRecord) => boolean, timeoutMs?: number): Promise<JobRecord>;
  /**
   * The BullMQ job once it is in one of `states` (the worker updates the record first,
   * then BullMQ), or throws after `timeoutMs`.
   */
  jobIn(model: string, id: string, states: readonly string[], timeoutMs?: number): Promise<Job<JobPayload>>;
  /** A worker config for this harness (short stall timings), with overrides. */
  config(env?: Record<string, string>): WorkerConfig;
  close(): Promise<void>;
}

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

/**
 * Redis (a fresh prefix), a models folder holding links to the tiny real models plus an
 * optional `models.yaml`, the catalog published from it by the scheduler's own
 * `ModelCatalog`, and a producer that queues jobs exactly as the scheduler does.
 */
export async function createHarness(
  options: {
    modelsYaml?: string;
    label?: string;
    /**
     * A `redis-server` of its own, stopped by `close()`: for tests that count commands with
     * MONITOR, which on the shared Redis would see every test file running meanwhile.
     */
    ownRedis?: boolean;
  } = {},
): Promise<Harness> {
  const own = options.ownRedis ? await startRedisServer() : null;
  const { url } = own ?? (await testRedis());
  const prefix = uniquePrefix(options.label ?? "worker");
  const keys = new RedisKeys(prefix);
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const modelsDir = await mkdtemp(join(tmpdir(), "corral-worker-models-"));
  const shared = sharedModelsDir();
  for (const name of [STORIES, TINY_RANDOM])
    await symlink(join(shared, `${name}.gguf`), join(modelsDir, `${name}.gguf`));
  if (options.modelsYaml) await writeFile(join(modelsDir, "models.yaml"), options.modelsYaml);
  const logger = pino({ level: process.env.CORRAL_TEST_LOG_LEVEL ?? "silent" });
  const catalog = await ModelCatalog.create({ redis, keys, modelsDir, logger, defaultContextSize: 512 });
  const records = new JobRecords(redis, keys);
  const fair = new FairQueue(redis, keys);
  const queues = new Map<string, Queue<JobPayload>>();
  let counter = 0;

  const queue = (model: string) => {
    const lane = laneName(model);
    let q = queues.get(lane);
    if (!q) {
      q = new Queue<JobPayload>(lane, { connection: redis, prefix: keys.prefix });
      queues.set(lane, q);
    }
    return q;
  };

  const resolve = (name: string): CatalogModel => {
    const model = catalog.resolve(name);
    if (!model) throw new Error(`no model ${name} in the test catalog`);
    return model;
  };

  return {
    url,
    prefix,
    keys,
    redis,
    records,
    catalog,
    modelsDir,
    logger,
    queue,
    async submit(input) {
      const model = resolve(input.model);
      const now = Date.now();
      const id = `job_${prefix}_${++counter}`;
      const source = input.source ?? "native";
      const priority = input.priority ?? 50;
      const kind = input.messages ? "chat" : "completion";
      const tenant = input.tenant ?? "test";
      const payload: JobPayload = {
        id,
        tenant,
        model: model.id,
        file: model.file,
        source,
        kind,
        ...(input.prompt !== undefined ? { prompt: input.prompt } : {}),
        ...(input.messages !== undefined ? { messages: input.messages } : {}),
        max_tokens: input.max_tokens ?? 32,
        temperature: input.temperature ?? 0,
        ...(input.stop ? { stop: input.stop } : {}),
        ...(input.seed !== undefined ? { seed: input.seed } : {}),
        stream: input.stream ?? true,
        requirement_bytes: model.requirement_bytes,
        ...(input.max_active !== undefined ? { max_active: input.max_active } : {}),
        fair_cost: estimateCost(0, input.max_tokens ?? 32),
        created_at: now,
      };
      const record = queuedJobRecord({ id, tenant, model: model.id, source, priority, created_at: now });
      await records.create(record);
      await redis.sadd(keys.lanes, laneName(model.id));
      // As the scheduler queues it: held in the lane's delayed set, listed for fair claim.
      await queue(model.id).add(kind, payload, {
        jobId: id,
        delay: HOLD_DELAY_MS,
        attempts: input.attempts ?? 3,
        backoff: { type: "exponential", delay: 200 },
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 3600 },
      });
      await fair.hold(laneName(model.id), [
        { id, tenant, weight: 1, priority: bullPriority(source, priority), createdAt: now, cost: payload.fair_cost! },
      ]);
      return record;
    },
    async waitFor(id, done = (record) => FINAL.has(record.status), timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: JobRecord | null = null;
      for (;;) {
        last = await records.get(id);
        if (last && done(last)) return last;
        if (Date.now() > deadline)
          throw new Error(`job ${id} did not reach the expected state within ${timeoutMs} ms: ${JSON.stringify(last)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async jobIn(model, id, states, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // The state first, then the job: a job read before a script moved it would show
        // the old fields (attemptsMade 0) with the new state.
        const state = await queue(model).getJobState(id);
        const job = states.includes(state) ? await queue(model).getJob(id) : undefined;
        if (job) return job;
        if (Date.now() > deadline) throw new Error(`BullMQ job ${id} is ${state}, not ${states.join(" or ")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    config(env = {}) {
      return loadConfig({
        CORRAL_REDIS_URL: url,
        CORRAL_PREFIX: prefix,
        CORRAL_MODELS_DIR: modelsDir,
        CORRAL_LOG_LEVEL: process.env.CORRAL_TEST_LOG_LEVEL ?? "silent",
        CORRAL_THREADS: "1",
        CORRAL_WORKER_ID: "test-box",
        CORRAL_WORKER_METRICS_PORT: "0",
        CORRAL_LOCK_DURATION_MS: "2000",
        CORRAL_STALLED_INTERVAL_MS: "1000",
        CORRAL_HEARTBEAT_MS: "500",
        CORRAL_DRAIN_MS: "10s",
        CORRAL_NVIDIA_SMI: "/nonexistent/nvidia-smi",
        ...env,
      });
    },
    async close() {
      for (const q of queues.values()) await q.close().catch(() => undefined);
      redis.disconnect();
      await cleanupPrefix(url, prefix);
      await own?.stop();
      await rm(modelsDir, { recursive: true, force: true });
    },
  };
}

/** Reads a job's token stream: the text and the end entry's fields. */
export async function readTokenStream(
  redis: Redis,
  keys: RedisKeys,
  id: string,
): Promise<{ text: string; end: Record<string, string> | null }> {
  const entries = await redis.xrange(keys.tokens(id), "-", "+");
  let text = "";
  let end: Record<string, string> | null = null;
  for (const [, fields] of entries) {
    const map: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
    if (map.done === "1") end = map;
    else text += map.t ?? "";
  }
  return { text, end };
}

/** The one CPU slot (one thread) the in-process slot tests run. */
export const CPU0: SlotSpec = {
  id: "test-box:cpu0",
  name: "cpu0",
  kind: "cpu",
  gpuIndex: null,
  gpus: [],
  devices: [],
  cudaVersion: null,
  threads: 1,
  calibrateThreads: false,
};
