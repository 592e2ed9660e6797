import os from "node:os";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import {
  CORRAL_VERSION,
  FairQueue,
  JobRecords,
  RedisKeys,
  connectRedis,
  duplicateRedis,
  type HostInfo,
  type WorkerState,
} from "@corral/shared";
import { ClaimCadence } from "../claim/claim-cadence.js";
import { ClaimLoop } from "../claim/claim-loop.js";
import { JobRunner } from "../claim/job-runner.js";
import { LaneMarkers } from "../claim/lane-markers.js";
import { LaneReader } from "../claim/lane-reader.js";
import { LaneWorkers } from "../claim/lane-workers.js";
import { LoadedModels } from "../claim/loaded-models.js";
import { LeaseCheck } from "../claim/lease-check.js";
import { LockKeeper } from "../claim/lock-keeper.js";
import { GpuMemoryProbe, RamMemoryProbe, type MemoryProbe } from "../claim/memory-probe.js";
import { TenantGate } from "../claim/tenant-gate.js";
import type { FailureKind, ModelEngine } from "../claim/types.js";
import { UsageMeter } from "../claim/usage-meter.js";
import type { WorkerConfig } from "../env.js";
import { hostInfo } from "../host/host-info.js";
import { SlotCatalog } from "../placement/slot-catalog.js";
import { placementDevices, reservationsOf } from "../placement/worker-plan.js";
import { createDefaultEngine, classifyEngineError } from "./default-engine.js";
import { Heartbeat } from "./heartbeat.js";
import { SlotMetrics } from "./slot-metrics.js";
import type { SlotSpec } from "./types.js";

export interface SlotOptions {
  config: WorkerConfig;
  slot: SlotSpec;
  logger: Logger;
  /**
   * The engine the slot loads models with. Tests inject one (e.g. with a `loadModel`
   * that fails). @defaultValue the node-llama-cpp engine: GPU "auto" for GPU slots, CPU for CPU slots
   */
  engine?: ModelEngine;
  /** @defaultValue the engine's typed errors: OutOfMemoryError, isUnrecoverable() */
  classify?: (error: unknown) => FailureKind;
  /** @defaultValue nvidia-smi for GPU slots, available RAM for CPU slots */
  probe?: MemoryProbe;
  /** @defaultValue a new Registry */
  registry?: Registry;
  /** Idle backoff bounds of the claim loop, ms. @defaultValue 50 and 500 */
  idleMinMs?: number;
  idleMaxMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
  /**
   * The start of the slot's lock tokens, given by the supervisor so that it can find the
   * jobs of this process should it die (`SlotRecovery`). @defaultValue `<slot id>:<pid>:`
   */
  lockTokenPrefix?: string;
}

/**
 * One slot: one GPU (or a share of the CPU) in its own process, with one engine, the
 * claim loop, a heartbeat, a cancel subscriber and its metrics Registry. The supervisor
 * runs one per GPU; tests may run one in-process.
 */
export class Slot {
  readonly spec: SlotSpec;
  readonly metrics: SlotMetrics;
  readonly #o: SlotOptions;
  readonly #log: Logger;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #engine: ModelEngine;
  readonly #ownsEngine: boolean;
  readonly #loop: ClaimLoop;
  readonly #heartbeat: Heartbeat;
  readonly #probe: MemoryProbe;
  readonly #startedAt: number;
  #hostInfo: HostInfo | null = null;
  #closing: Promise<void> | null = null;

  private constructor(
    options: SlotOptions,
    parts: { redis: Redis; subscriber: Redis; engine: ModelEngine; ownsEngine: boolean },
  ) {
    const { config, slot } = options;
    this.#o = options;
    this.spec = slot;
    this.#log = options.logger.child({ component: "slot", slot: slot.id });
    this.#redis = parts.redis;
    this.#subscriber = parts.subscriber;
    this.#engine = parts.engine;
    this.#ownsEngine = parts.ownsEngine;
    const now = options.now ?? Date.now;
    this.#startedAt = now();
    const keys = new RedisKeys(config.prefix);
    this.#probe =
      options.probe ??
      (slot.kind === "gpu"
        ? new GpuMemoryProbe({
            gpus: slot.gpus,
            nvidiaSmi: { nvidiaSmiPath: config.nvidiaSmiPath, timeoutMs: config.nvidiaSmiTimeoutMs },
            reserveBytes: config.reserveBytes,
            logger: this.#log,
          })
        : new RamMemoryProbe({ reserveBytes: config.reserveBytes }));
    this.metrics = new SlotMetrics({
      slot: slot.id,
      host: config.workerId,
      gpus: () => this.#probe.gpus(),
      devices: { devices: slot.devices, gpus: slot.gpus.map((gpu) => gpu.index) },
      ...(options.registry ? { registry: options.registry } : {}),
    });
    this.#loop = composeClaimLoop({
      redis: parts.redis,
      keys,
      config,
      slot,
      engine: parts.engine,
      classify: options.classify ?? classifyEngineError,
      probe: this.#probe,
      metrics: this.metrics,
      logger: options.logger,
      now,
      ...(options.idleMinMs === undefined ? {} : { idleMinMs: options.idleMinMs }),
      ...(options.idleMaxMs === undefined ? {} : { idleMaxMs: options.idleMaxMs }),
      ...(options.lockTokenPrefix === undefined ? {} : { tokenPrefix: options.lockTokenPrefix }),
    });
    this.#heartbeat = new Heartbeat({
      redis: parts.redis,
      keys,
      id: slot.id,
      intervalMs: config.heartbeatMs,
      state: () => this.workerState(),
      logger: this.#log,
    });
    parts.subscriber.on("message", (channel: string, jobId: string) => {
      if (channel === keys.cancelChannel) this.#loop.cancel(jobId);
    });
  }

  /** Connects to Redis, creates the engine, subscribes to cancels, starts beating and claiming. */
  static async start(options: SlotOptions): Promise<Slot> {
    const { config, slot } = options;
    const keys = new RedisKeys(config.prefix);
    const redis = connectRedis(config.redisUrl, config.redisTls, {
      maxRetriesPerRequest: null,
      connectionName: `corral:${slot.id}`,
    });
    const subscriber = duplicateRedis(redis, { connectionName: `corral:${slot.id}:cancel` });
    let engine: ModelEngine | undefined;
    try {
      await subscriber.subscribe(keys.cancelChannel);
      engine =
        options.engine ??
        (await createDefaultEngine({
          gpu: slot.kind === "gpu",
          threads: slot.threads,
          calibrateThreads: slot.calibrateThreads,
          limits: config.jobLimits,
          prefixReuse: config.prefixReuse,
          modelsDir: config.modelsDir,
          logger: options.logger.child({ component: "engine", slot: slot.id }),
        }));
      const instance = new Slot(options, { redis, subscriber, engine, ownsEngine: options.engine === undefined });
      await instance.#begin();
      return instance;
    } catch (error) {
      if (engine && options.engine === undefined) await engine.close().catch(() => undefined);
      subscriber.disconnect();
      redis.disconnect();
      throw error;
    }
  }

  async #begin(): Promise<void> {
    try {
      this.#hostInfo = await hostInfo();
    } catch (error) {
      this.#log.warn({ err: error }, "could not read the host's facts");
    }
    this.#loop.start();
    await this.#heartbeat.start();
    this.#log.info(
      {
        kind: this.spec.kind,
        gpu: this.spec.gpuIndex,
        threads: this.spec.threads,
        calibrateThreads: this.spec.calibrateThreads,
      },
      "slot started; claiming jobs",
    );
  }

  get state(): WorkerState["state"] {
    return this.#loop.state;
  }

  get activeJobs(): string[] {
    return this.#loop.activeJobs;
  }

  /** The state the heartbeat publishes. Samples the device (at most every ~1.5 s). */
  async workerState(): Promise<WorkerState> {
    const reading = await this.#probe.read();
    const reserve = this.#probe.reserveBytes(reading.totalBytes);
    const { config } = this.#o;
    const host = this.#hostInfo ? { ...this.#hostInfo, memory_free_bytes: os.freemem() } : null;
    return {
      id: this.spec.id,
      host: config.workerId,
      slot: this.spec.name,
      pid: process.pid,
      version: CORRAL_VERSION,
      mode: this.spec.kind,
      gpus: [...this.#probe.gpus()],
      cuda_version: this.spec.cudaVersion,
      host_info: host,
      budget_total_bytes: Math.max(0, reading.totalBytes - reserve),
      budget_free_bytes: Math.max(0, reading.freeBytes - reserve),
      ...(this.spec.groupBudgetBytes === undefined ? {} : { group_budget_total_bytes: this.spec.groupBudgetBytes }),
      loaded_models: this.#loop.loadedModels(),
      active_jobs: this.#loop.activeJobs,
      state: this.#loop.state,
      started_at: this.#startedAt,
      updated_at: (this.#o.now ?? Date.now)(),
    };
  }

  /**
   * Stops claiming; active jobs get `drainMs` (default CORRAL_DRAIN_MS) to finish, the
   * rest are released to their lanes. Then the heartbeat key goes, the models are
   * disposed and Redis is closed. Idempotent.
   */
  close(drainMs = this.#o.config.drainMs): Promise<void> {
    this.#closing ??= this.#close(drainMs);
    return this.#closing;
  }

  async #close(drainMs: number): Promise<void> {
    this.#log.info({ drainMs }, "slot stopping");
    const steps: [string, () => Promise<unknown>][] = [
      ["claim loop", () => this.#loop.close(drainMs)],
      ["heartbeat", () => this.#heartbeat.stop()],
      ["cancel subscriber", () => this.#subscriber.quit()],
      ["engine", () => (this.#ownsEngine ? this.#engine.close() : Promise.resolve())],
      ["redis", () => this.#redis.quit()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.#log.warn({ err: error, step: name }, "a shutdown step failed");
      }
    }
    this.#log.info("slot stopped");
  }
}

/** How often the catalog is re-read; also the oldest a fast-lane look may be extended (cadence rule 7). */
const CATALOG_REFRESH_MS = 2000;
/**
 * How long a full look at the lanes stays good for its "run" decision (cadence rule 1):
 * the claim policy so sees other lanes (a head job waiting past `swapAfterMs`, a more
 * urgent lane) at most this late.
 */
const LANE_READ_MS = 250;

/**
 * The composition root of the claim code: the claim loop and its collaborators, on the
 * slot's command connection, with one logger (`component: "claim"`). The loop owns them
 * and closes them.
 */
function composeClaimLoop(o: {
  redis: Redis;
  keys: RedisKeys;
  config: WorkerConfig;
  slot: SlotSpec;
  engine: ModelEngine;
  classify: (error: unknown) => FailureKind;
  probe: MemoryProbe;
  metrics: SlotMetrics;
  logger: Logger;
  now: () => number;
  idleMinMs?: number;
  idleMaxMs?: number;
  tokenPrefix?: string;
}): ClaimLoop {
  const { redis, keys, config, slot, now, metrics, classify } = o;
  const logger = o.logger.child({ component: "claim", slot: slot.id });
  const { lockDurationMs } = config;
  const workers = new LaneWorkers({
    connection: redis,
    keys,
    stalledIntervalMs: config.stalledIntervalMs,
    lockDurationMs,
    logger,
    owner: slot.id,
  });
  const usage = new UsageMeter({ redis, keys, logger, now });
  const gate = new TenantGate({
    redis,
    keys,
    // Renewed with the job's lock every half lock duration: two missed renewals free it.
    leaseMs: 2 * lockDurationMs,
    logger,
    now,
  });
  const keeper = new LockKeeper({ locks: workers, places: gate, lockDurationMs, logger });
  return new ClaimLoop({
    slot,
    probe: o.probe,
    metrics,
    logger,
    catalog: new SlotCatalog({
      redis,
      keys,
      refreshMs: CATALOG_REFRESH_MS,
      logger,
      host: { host: config.workerId, reservations: reservationsOf(config) },
      // Pins look at the device's name, index and total memory only (not free memory).
      device: placementDevices([slot], config.reserveBytes, { totalBytes: os.totalmem(), freeBytes: os.freemem() })[0]!,
      ...(slot.dynamicGroup ? { minRequirementBytes: slot.dynamicGroup.minRequirementBytes } : {}),
    }),
    lanes: new LaneReader(redis, keys),
    markers: new LaneMarkers({ redis, keys, logger }),
    workers,
    models: new LoadedModels({
      engine: o.engine,
      classify,
      metrics,
      logger,
      modelsDir: config.modelsDir,
      keepAliveMs: config.keepAliveMs,
      oomCooldownMs: config.oomCooldownMs,
      now,
    }),
    fair: new FairQueue(redis, keys),
    usage,
    gate,
    runner: new JobRunner({
      redis,
      keys,
      records: new JobRecords(redis, keys),
      slot,
      metrics,
      classify,
      locks: keeper,
      tokenStreamTtlSeconds: config.tokenStreamTtlSeconds,
      usage,
      gate,
      logger,
      now,
    }),
    keeper,
    cadence: new ClaimCadence({ laneReadMs: LANE_READ_MS, catalogRefreshMs: CATALOG_REFRESH_MS }),
    swapAfterMs: config.swapAfterMs,
    leases: new LeaseCheck({ redis, keys, leaseMs: config.interactiveLeaseMs, now }),
    now,
    ...(o.idleMinMs === undefined ? {} : { idleMinMs: o.idleMinMs }),
    ...(o.idleMaxMs === undefined ? {} : { idleMaxMs: o.idleMaxMs }),
    ...(o.tokenPrefix === undefined ? {} : { tokenPrefix: o.tokenPrefix }),
  });
}
