import { join } from "node:path";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { RedisKeys } from "@corral/shared";
import { FileService } from "../files/file-service.js";
import { FileStore } from "../files/file-store.js";
import { FileSweeper } from "../files/file-sweeper.js";
import type { JobService } from "../jobs/job-service.js";
import { BatchMetrics } from "./batch-metrics.js";
import { BatchProcessor } from "./batch-processor.js";
import { BatchRunner } from "./batch-runner.js";
import { BatchService } from "./batch-service.js";
import { BatchStore } from "./batch-store.js";

export interface BatchSystemOptions {
  /** Command connection (the caller owns it). */
  redis: Redis;
  keys: RedisKeys;
  jobs: JobService;
  /** The scheduler's metrics registry; batch gauges are added to it. */
  registry: Registry;
  logger: Logger;
  /** Files live in `<dataDir>/files`. */
  dataDir: string;
  /** @defaultValue 200 MB */
  maxFileBytes?: number;
  /** @defaultValue 1000000 */
  maxFileLines?: number;
  /** Most bytes of files per tenant. @defaultValue 10 GiB */
  maxTenantFileBytes?: number;
  /** Batch output files expire this long after they are written (0: never). @defaultValue 30 days */
  outputFileTtlMs?: number;
  /** How often expired and unregistered files are deleted (0: never). @defaultValue 10 min */
  fileSweepMs?: number;
  /** Unregistered content older than this is deleted by the sweep. @defaultValue 1 h */
  fileOrphanAgeMs?: number;
  /** @defaultValue 200 */
  chunkLines?: number;
  /** Most unfinished batches per tenant. @defaultValue 100 */
  maxActivePerTenant?: number;
  /** Longest batch input line run (the online body limit). @defaultValue 1 MiB */
  maxLineBytes?: number;
  /** @defaultValue 500 */
  loopMs?: number;
  /** @defaultValue 30000 */
  leaseMs?: number;
  /** @defaultValue 30000 */
  cancelGraceMs?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
  /** Waits for replicas before a created batch is answered. @defaultValue no wait */
  acknowledge?: (what: string) => Promise<void>;
}

/** Files and batches, wired: what the scheduler starts (`app.ts` mounts their routers at `/v1/files` and `/v1/batches`). */
export interface BatchSystem {
  files: FileService;
  batches: BatchService;
  store: BatchStore;
  runner: BatchRunner;
  metrics: BatchMetrics;
  /** Starts the batch loop. */
  start(): void;
  /** Stops the loop; work in progress saves its position. Idempotent. */
  close(): Promise<void>;
}

/** Creates the file store folder and the file and batch services, and registers the batch metrics. */
export async function createBatchSystem(options: BatchSystemOptions): Promise<BatchSystem> {
  const { redis, keys, jobs, logger } = options;
  const clock = options.clock ?? Date.now;
  const fileStore = await FileStore.create({ dir: join(options.dataDir, "files") });
  const files = new FileService({
    redis,
    keys,
    store: fileStore,
    logger: logger.child({ component: "files" }),
    ...(options.maxFileBytes !== undefined ? { maxBytes: options.maxFileBytes } : {}),
    ...(options.maxFileLines !== undefined ? { maxLines: options.maxFileLines } : {}),
    ...(options.maxTenantFileBytes !== undefined ? { maxTenantBytes: options.maxTenantFileBytes } : {}),
    ...(options.outputFileTtlMs !== undefined ? { outputTtlMs: options.outputFileTtlMs } : {}),
    clock,
  });
  const sweeper = new FileSweeper({
    files,
    logger: logger.child({ component: "file-sweep" }),
    ...(options.fileSweepMs !== undefined ? { intervalMs: options.fileSweepMs } : {}),
    ...(options.fileOrphanAgeMs !== undefined ? { orphanAgeMs: options.fileOrphanAgeMs } : {}),
  });
  const store = new BatchStore(redis, keys);
  const metrics = new BatchMetrics({
    registry: options.registry,
    store,
    logger: logger.child({ component: "metrics" }),
  });
  const leaseMs = options.leaseMs ?? 30_000;
  const processor = new BatchProcessor({
    redis,
    keys,
    store,
    files,
    jobs,
    logger: logger.child({ component: "batches" }),
    leaseMs,
    clock,
    onIngested: (lines) => metrics.linesIngested.inc(lines),
    ...(options.chunkLines !== undefined ? { chunkLines: options.chunkLines } : {}),
    ...(options.maxLineBytes !== undefined ? { maxLineBytes: options.maxLineBytes } : {}),
    ...(options.cancelGraceMs !== undefined ? { cancelGraceMs: options.cancelGraceMs } : {}),
  });
  const runner = new BatchRunner({
    store,
    processor,
    logger: logger.child({ component: "batch-runner" }),
    leaseMs,
    ...(options.loopMs !== undefined ? { loopMs: options.loopMs } : {}),
  });
  const batches = new BatchService({
    store,
    files,
    runner,
    logger: logger.child({ component: "batches" }),
    admit: (tenant) => options.jobs.admit(tenant),
    ...(options.maxActivePerTenant !== undefined ? { maxActivePerTenant: options.maxActivePerTenant } : {}),
    clock,
    ...(options.acknowledge ? { acknowledge: options.acknowledge } : {}),
  });
  return {
    files,
    batches,
    store,
    runner,
    metrics,
    start: () => {
      runner.start();
      sweeper.start();
    },
    close: async () => {
      try {
        await sweeper.close();
      } finally {
        await runner.close();
      }
    },
  };
}
