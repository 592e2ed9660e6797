import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from "prom-client";
import type { Logger } from "pino";
import type { Redis } from "ioredis";
import {
  FairQueue,
  LANE_PREFIX,
  METRIC,
  memoryUsedRatio,
  readFairStats,
  readRedisFacts,
  type FairStats,
  type JobRecord,
  type RedisKeys,
} from "@corral/shared";
import type { LaneQueues } from "../jobs/lane-queues.js";
import type { TenantBudget, TokenBudget } from "../jobs/token-budget.js";
import type { AudioBudget } from "../jobs/audio-budget.js";
import type { WorkerRegistry } from "../workers/worker-registry.js";

export interface SchedulerMetricsOptions {
  /** The scheduler's own registry (never the global one). */
  registry: Registry;
  lanes: LaneQueues;
  workers: WorkerRegistry;
  /** Daily token budgets, for each budgeted tenant's tokens today. @defaultValue none */
  tokenBudget?: TokenBudget;
  /** Audio seconds counted per tenant today, and their budgets. @defaultValue none */
  audioBudget?: AudioBudget;
  logger: Logger;
  /** The scheduler's Redis, for its memory gauge. @defaultValue none (no memory gauge value) */
  redis?: Redis;
  /** Redis key names, with `redis` for the fair-claim gauges. @defaultValue none (no fair-claim gauge values) */
  keys?: RedisKeys;
  /**
   * Longest a scrape waits for Redis before reporting what it has.
   * @defaultValue 2000
   */
  collectTimeoutMs?: number;
  /**
   * Whether to add prom-client's default process metrics to the registry.
   * @defaultValue true
   */
  defaultMetrics?: boolean;
}

const QUEUE_STATES = ["waiting", "active", "delayed", "completed", "failed"] as const;

/** The scheduler's metrics. Queue and worker gauges fill themselves at scrape time. */
export class SchedulerMetrics {
  readonly registry: Registry;
  readonly httpRequestDuration: Histogram<"method" | "route" | "status">;
  readonly jobsSubmitted: Counter<"model" | "tenant" | "source">;
  readonly queueJobs: Gauge<"model" | "state">;
  readonly workersOnline: Gauge;
  readonly workerHostsOnline: Gauge;
  readonly tenantDailyTokens: Gauge<"tenant">;
  readonly tenantDailyTokenBudget: Gauge<"tenant">;
  readonly redisMemoryUsed: Gauge;
  readonly tenantBacklog: Gauge<"tenant" | "model">;
  readonly tenantVirtualTokens: Gauge<"tenant">;
  readonly audioSecondsSubmitted: Counter<"model" | "tenant">;
  readonly tenantDailyAudioSeconds: Gauge<"tenant">;
  readonly tenantAudioBudget: Gauge<"tenant">;

  constructor(options: SchedulerMetricsOptions) {
    const { registry, lanes, workers, logger } = options;
    const timeoutMs = options.collectTimeoutMs ?? 2000;
    this.registry = registry;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "corral_scheduler_" });

    this.httpRequestDuration = new Histogram({
      name: METRIC.httpRequestDuration,
      help: "HTTP request duration, by method, route pattern and status.",
      labelNames: ["method", "route", "status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.jobsSubmitted = new Counter({
      name: METRIC.jobsSubmitted,
      help: "Jobs accepted into a lane, by model, tenant and source.",
      labelNames: ["model", "tenant", "source"],
      registers: [registry],
    });
    this.queueJobs = new Gauge({
      name: METRIC.queueJobs,
      help: "Jobs in each lane by state (waiting includes prioritized), read from Redis at scrape time.",
      labelNames: ["model", "state"],
      registers: [registry],
      async collect() {
        const counts = await withTimeout(lanes.counts(), timeoutMs).catch((error: unknown) => {
          logger.warn({ err: error }, "could not read lane counts for metrics");
          return null;
        });
        if (counts === null) return;
        this.reset();
        for (const lane of counts)
          for (const state of QUEUE_STATES) this.set({ model: lane.model, state }, lane[state]);
      },
    });
    // Both worker gauges read the live heartbeats at scrape time; null when Redis did not answer.
    const liveWorkers = () =>
      withTimeout(workers.list(), timeoutMs).catch((error: unknown) => {
        logger.warn({ err: error }, "could not read worker heartbeats for metrics");
        return null;
      });
    this.workersOnline = new Gauge({
      name: METRIC.workersOnline,
      help: "Worker slots with a live heartbeat, read from Redis at scrape time.",
      registers: [registry],
      async collect() {
        const live = await liveWorkers();
        if (live !== null) this.set(live.length);
      },
    });
    this.workerHostsOnline = new Gauge({
      name: METRIC.workerHostsOnline,
      help: "Worker hosts (supervisors) with at least one slot heartbeating, read from Redis at scrape time.",
      registers: [registry],
      async collect() {
        const live = await liveWorkers();
        if (live !== null) this.set(new Set(live.map((worker) => worker.host)).size);
      },
    });
    const redis = options.redis;
    this.redisMemoryUsed = new Gauge({
      name: METRIC.redisMemoryUsed,
      help: "Redis's used memory over its maxmemory (over the host's memory when no maxmemory is set), read at scrape time. At 1 Redis refuses writes (noeviction).",
      registers: [registry],
      async collect() {
        if (!redis) return;
        const facts = await withTimeout(readRedisFacts(redis), timeoutMs).catch((error: unknown) => {
          logger.warn({ err: error }, "could not read Redis memory for metrics");
          return null;
        });
        if (facts !== null) this.set(memoryUsedRatio(facts));
      },
    });
    const keys = options.keys;
    // Both fair-claim gauges read the same Redis state: one read serves a scrape's two collects.
    let fairRead: { at: number; stats: Promise<{ lanes: string[]; stats: FairStats }> } | null = null;
    const fair = redis && keys ? new FairQueue(redis, keys) : null;
    const fairStats = async () => {
      if (!fair) return null;
      const now = Date.now();
      if (fairRead === null || now - fairRead.at > 1000) {
        const stats = (async () => {
          const known = await lanes.known();
          return { lanes: known, stats: await readFairStats(fair, known) };
        })();
        fairRead = { at: now, stats };
      }
      return withTimeout(fairRead.stats, timeoutMs).catch((error: unknown) => {
        logger.warn({ err: error }, "could not read fair claim's backlog and counters for metrics");
        return null;
      });
    };
    this.tenantBacklog = new Gauge({
      name: METRIC.tenantBacklog,
      help: "Jobs each tenant has held for fair claim on each model's lane (waiting for a slot), read from Redis at scrape time; 0 for a tenant with a counter and nothing held.",
      labelNames: ["tenant", "model"],
      registers: [registry],
      async collect() {
        const read = await fairStats();
        if (read === null) return;
        this.reset();
        for (const lane of read.lanes) {
          const held = read.stats.held.get(lane) ?? new Map<string, number>();
          const model = lane.slice(LANE_PREFIX.length);
          for (const tenant of new Set([...read.stats.counters.keys(), ...held.keys()]))
            this.set({ tenant, model }, held.get(tenant) ?? 0);
        }
      },
    });
    this.tenantVirtualTokens = new Gauge({
      name: METRIC.tenantVirtualTokens,
      help: "Each tenant's weighted virtual token counter (fair claim serves the lowest waiting one next; tokens ÷ weight), read from Redis at scrape time.",
      labelNames: ["tenant"],
      registers: [registry],
      async collect() {
        const read = await fairStats();
        if (read === null) return;
        this.reset();
        for (const [tenant, counter] of read.stats.counters) this.set({ tenant }, counter);
      },
    });
    const tokenBudget = options.tokenBudget;
    // Both gauges read the same counts: current() reads Redis at most once per refresh.
    const fromBudgets = (value: (budget: TenantBudget) => number) =>
      async function collect(this: Gauge<"tenant">) {
        if (!tokenBudget?.enabled) return;
        const list = await withTimeout(tokenBudget.current(), timeoutMs).catch((error: unknown) => {
          logger.warn({ err: error }, "could not read tenants' tokens for metrics");
          return null;
        });
        if (list === null) return;
        this.reset();
        for (const budget of list) this.set({ tenant: budget.tenant }, value(budget));
      };
    this.tenantDailyTokenBudget = new Gauge({
      name: METRIC.tenantDailyTokenBudget,
      help: "Each budgeted tenant's tokens per UTC day (CORRAL_TENANT_TOKENS_PER_DAY).",
      labelNames: ["tenant"],
      registers: [registry],
      collect: fromBudgets((b) => b.budget),
    });
    this.tenantDailyTokens = new Gauge({
      name: METRIC.tenantDailyTokens,
      help: "Tokens (prompt + completion) each budgeted tenant's jobs used today (UTC), as workers last wrote them (every few seconds).",
      labelNames: ["tenant"],
      registers: [registry],
      collect: fromBudgets((b) => b.used),
    });
    this.audioSecondsSubmitted = new Counter({
      name: METRIC.audioSecondsSubmitted,
      help: "Seconds of decoded audio in the transcription and translation jobs this scheduler accepted, by model and tenant.",
      labelNames: ["model", "tenant"],
      registers: [registry],
    });
    const audioBudget = options.audioBudget;
    this.tenantDailyAudioSeconds = new Gauge({
      name: METRIC.tenantDailyAudioSeconds,
      help: "Seconds of audio each tenant's transcriptions and translations were admitted with today (UTC), read from Redis at scrape time.",
      labelNames: ["tenant"],
      registers: [registry],
      async collect() {
        if (!audioBudget) return;
        const used = await withTimeout(audioBudget.allUsedToday(), timeoutMs).catch((error: unknown) => {
          logger.warn({ err: error }, "could not read tenants' audio seconds for metrics");
          return null;
        });
        if (used === null) return;
        this.reset();
        for (const [tenant, seconds] of used) this.set({ tenant }, seconds);
      },
    });
    this.tenantAudioBudget = new Gauge({
      name: METRIC.tenantAudioBudget,
      help: "Each tenant's seconds of audio per UTC day (CORRAL_TENANT_AUDIO_SECONDS_PER_DAY), for tenants named there.",
      labelNames: ["tenant"],
      registers: [registry],
      collect() {
        if (!audioBudget) return;
        this.reset();
        for (const [tenant, seconds] of audioBudget.named) this.set({ tenant }, seconds);
      },
    });
  }

  /** Counts a submitted job, and a transcription's seconds of audio. */
  jobSubmitted(record: JobRecord, audioSeconds = 0): void {
    this.jobsSubmitted.inc({ model: record.model, tenant: record.tenant, source: record.source });
    if (audioSeconds > 0) this.audioSecondsSubmitted.inc({ model: record.model, tenant: record.tenant }, audioSeconds);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
