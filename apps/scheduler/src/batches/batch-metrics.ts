import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import { BatchStatus, METRIC } from "@corral/shared";
import type { BatchStore } from "./batch-store.js";

export interface BatchMetricsOptions {
  /** The scheduler's registry. */
  registry: Registry;
  store: BatchStore;
  logger: Logger;
  /** Longest a scrape waits for Redis. @defaultValue 2000 */
  collectTimeoutMs?: number;
}

const REQUEST_STATES = ["pending", "completed", "failed", "cancelled"] as const;

/**
 * Batch progress, read from Redis at scrape time (so every replica reports the same,
 * cluster-wide values), plus this replica's ingest counter:
 * - `corral_batches{status}`: batches in each status;
 * - `corral_batch_requests{state}`: lines of the active batches by state
 *   (pending = not yet finished, including lines not yet ingested);
 * - `corral_batch_lines_ingested_total`: lines this scheduler has ingested.
 */
export class BatchMetrics {
  readonly batches: Gauge<"status">;
  readonly requests: Gauge<"state">;
  readonly linesIngested: Counter;

  constructor(options: BatchMetricsOptions) {
    const { registry, store, logger } = options;
    const timeoutMs = options.collectTimeoutMs ?? 2000;
    this.batches = new Gauge({
      name: METRIC.batches,
      help: "Batches in each status (all tenants), read from Redis at scrape time.",
      labelNames: ["status"],
      registers: [registry],
      async collect() {
        const counts = await withTimeout(store.statusCounts(), timeoutMs).catch((error: unknown) => {
          logger.warn({ err: error }, "could not read batch status counts for metrics");
          return null;
        });
        if (counts === null) return;
        for (const status of BatchStatus.options) this.set({ status }, Math.max(0, counts[status] ?? 0));
      },
    });
    this.requests = new Gauge({
      name: METRIC.batchRequests,
      help: "Request lines of the active (not final) batches by state, read from Redis at scrape time.",
      labelNames: ["state"],
      registers: [registry],
      async collect() {
        const read = async () => store.countersMany(await store.activeIds());
        const all = await withTimeout(read(), timeoutMs).catch((error: unknown) => {
          logger.warn({ err: error }, "could not read batch counters for metrics");
          return null;
        });
        if (all === null) return;
        const sums = { pending: 0, completed: 0, failed: 0, cancelled: 0 };
        for (const c of all) {
          sums.completed += c.completed;
          sums.failed += c.failed;
          sums.cancelled += c.cancelled;
          sums.pending += Math.max(0, c.total - c.completed - c.failed - c.cancelled);
        }
        for (const state of REQUEST_STATES) this.set({ state }, sums[state]);
      },
    });
    this.linesIngested = new Counter({
      name: METRIC.batchLinesIngested,
      help: "Batch input lines this scheduler has ingested (queued as jobs or recorded as invalid).",
      registers: [registry],
    });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
