import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import { ConfigError, METRIC, RedisKeys, connectRedis, guardRedis } from "@corral/shared";
import { childEnvironment, type WorkerConfig } from "../env.js";
import { discoverGpus, discoverTopology, type GpuDiscovery } from "../gpu/index.js";
import { reservationsOf } from "../placement/worker-plan.js";
import { DynamicGroups, withGroupBudgets } from "./dynamic-groups.js";
import { MetricsServer } from "./metrics-server.js";
import { planSlots } from "./plan-slots.js";
import { SlotProcess, type SlotProcessState } from "./slot-process.js";
import { SlotRecovery } from "./slot-recovery.js";
import type { SlotSpec } from "../slot/types.js";

export interface StartWorkerOptions {
  /** @defaultValue pino at CORRAL_LOG_LEVEL on stdout */
  logger?: Logger;
  /**
   * Base environment of the slot processes. @defaultValue this process's environment
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** The slot entry to fork. @defaultValue `slot/slot-main.js` beside this file (`.ts` under tsx) */
  slotEntry?: string;
  /** Restart backoff after a slot dies, ms. @defaultValue 1000, doubling to 30000 */
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** How long `startWorker` waits for every slot's first "ready". @defaultValue 60000 */
  readyTimeoutMs?: number;
  /** Discovery result to use instead of running nvidia-smi (tests). */
  discovery?: GpuDiscovery;
  /** How often dynamic groups read the lanes, ms. @defaultValue 1000 */
  groupCheckMs?: number;
}

/** A slot as the supervisor sees it. */
export interface SlotStatus {
  id: string;
  name: string;
  kind: "gpu" | "cpu";
  gpuIndex: number | null;
  pid: number | null;
  state: SlotProcessState;
  restarts: number;
}

export interface RunningWorker {
  /** The slots, live. */
  readonly slots: readonly SlotStatus[];
  readonly discovery: GpuDiscovery;
  /**
   * Dynamic groups' events (`draining`, `bound`, `formed`, `split`, each a `GroupEvent`);
   * none when they are off or the host has fewer than two whole GPUs of their own.
   */
  readonly groups: EventEmitter;
  /** `http://127.0.0.1:<port>/metrics` */
  readonly metricsUrl: string;
  /** SIGTERM every slot, wait while they drain, stop serving metrics. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a worker: finds the GPUs, forks one slot process per GPU (pinned with
 * `CUDA_VISIBLE_DEVICES=<index>` and `CUDA_DEVICE_ORDER=PCI_BUS_ID`, so CUDA's device 0 is
 * nvidia-smi's row `<index>`; `CORRAL_SLOT_GPU=<index>` names that row) or per MIG device
 * (`CUDA_VISIBLE_DEVICES=MIG-<uuid>`), or CPU slots when
 * there is no GPU or CORRAL_CPU is set. A CUDA crash then takes down one slot, which is
 * restarted with exponential backoff, and the jobs it held go back to their lanes at once
 * ({@link SlotRecovery}). Serves the aggregated `/metrics`. With CORRAL_DYNAMIC_GROUPS,
 * forms groups of GPUs for waiting models too big for one ({@link DynamicGroups}): the
 * set of slots then changes while the worker runs.
 * Resolves once every first slot reported ready (or `readyTimeoutMs` passed).
 */
export async function startWorker(config: WorkerConfig, options: StartWorkerOptions = {}): Promise<RunningWorker> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { worker: config.workerId } });
  const log = logger.child({ component: "supervisor" });
  // The supervisor's one Redis connection: the start-up check runs on it, then slot recovery.
  const redis = connectRedis(config.redisUrl, config.redisTls, {
    connectionName: `corral:${config.workerId}:supervisor`,
  });
  redis.on("error", (error: Error) => log.debug({ err: error }, "supervisor Redis connection error"));
  const baseEnv = childEnvironment({}, options.env);
  let discovery: GpuDiscovery;
  let specs: SlotSpec[];
  try {
    await checkRedisAtStart(redis, config, log);
    discovery =
      options.discovery ??
      (config.cpu
        ? { mode: "cpu" as const, gpus: [], driverVersion: null, cudaVersion: null }
        : await discoverGpus({
            nvidiaSmiPath: config.nvidiaSmiPath,
            timeoutMs: config.nvidiaSmiTimeoutMs,
            env: baseEnv,
            logger,
          }));
    specs = planSlots(config, discovery, os.availableParallelism());
    // Heartbeats then tell the scheduler how big a model this host could run on a group.
    if (config.dynamicGroups) specs = withGroupBudgets(specs, config.reserveBytes);
  } catch (error) {
    redis.disconnect(); // nothing uses it yet; slot recovery takes it over below
    throw error;
  }
  const { entry, execArgv } = options.slotEntry
    ? { entry: options.slotEntry, execArgv: options.slotEntry.endsWith(".ts") ? ["--import", "tsx"] : [] }
    : slotEntry();

  const registry = new Registry();
  const slotUp = new Gauge({
    name: METRIC.slotUp,
    help: "1 while the slot's process is running and claiming.",
    labelNames: ["slot"] as const,
    registers: [registry],
  });
  const slotRestarts = new Counter({
    name: METRIC.slotRestarts,
    help: "Times a slot process died and was restarted.",
    labelNames: ["slot"] as const,
    registers: [registry],
  });

  const jobsRecovered = new Counter({
    name: METRIC.jobsRecovered,
    help: "Jobs a dead slot process held that the supervisor put back in their lanes (one attempt used each).",
    labelNames: ["slot"] as const,
    registers: [registry],
  });
  const recoveries = startRecoveries(redis, config, log, (slot, jobs) => jobsRecovered.inc({ slot }, jobs));

  /** The slot processes up now (or retiring), by slot name. */
  const live = new Map<string, SlotProcess>();
  let closing: Promise<void> | null = null;
  let groups: DynamicGroups | null = null;
  const launch = (spec: SlotSpec): SlotProcess => {
    const extra: Record<string, string> = { CORRAL_SLOT_ID: spec.id };
    if (spec.gpuIndex !== null) {
      extra.CUDA_VISIBLE_DEVICES = spec.devices.join(",");
      extra.CUDA_DEVICE_ORDER = "PCI_BUS_ID";
      extra.CORRAL_SLOT_GPU = String(spec.gpuIndex);
    }
    const slot = new SlotProcess({
      spec,
      config,
      entry,
      execArgv,
      env: childEnvironment(extra, baseEnv),
      logger,
      ...(options.restartInitialMs === undefined ? {} : { restartInitialMs: options.restartInitialMs }),
      ...(options.restartMaxMs === undefined ? {} : { restartMaxMs: options.restartMaxMs }),
    });
    slotUp.set({ slot: spec.id }, 0);
    slotRestarts.inc({ slot: spec.id }, 0);
    jobsRecovered.inc({ slot: spec.id }, 0);
    slot.on("ready", () => slotUp.set({ slot: spec.id }, 1));
    slot.on("exit", (code: number | null, signal: string | null, expected: boolean, tokens: string | undefined) => {
      slotUp.set({ slot: spec.id }, 0);
      if (!expected) slotRestarts.inc({ slot: spec.id });
      // A slot that drained and exited 0 holds nothing; any other exit may have left jobs locked.
      if (tokens !== undefined && (code !== 0 || signal !== null)) recoveries.recover(spec.id, tokens);
      // Retired or stopped for a group (not by close()): the groups start what comes next.
      // Its series goes (it is not down, it is not there: CorralSlotDown must not fire).
      if (expected && closing === null) {
        if (live.get(spec.name) === slot) live.delete(spec.name);
        slotUp.remove({ slot: spec.id });
        groups?.slotExited(spec.name);
      }
    });
    live.set(spec.name, slot);
    return slot;
  };
  const processes = specs.map(launch);

  const server = await MetricsServer.listen({
    port: config.metricsPort,
    host: config.metricsHost,
    registry,
    logger: log,
    slotMetrics: async () =>
      (await Promise.all([...live.values()].map((slot) => slot.metrics()))).filter((m): m is unknown[] => m !== null),
  }).catch(async (error: unknown) => {
    await recoveries.close();
    throw error;
  });

  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const ready = Promise.all(
    processes.map(
      (slot) =>
        new Promise<void>((resolve) => {
          slot.once("ready", () => resolve());
        }),
    ),
  );
  for (const slot of processes) slot.start();
  let readyTimer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    ready.then(() => false),
    new Promise<boolean>((resolve) => {
      readyTimer = setTimeout(() => resolve(true), readyTimeoutMs);
    }),
  ]);
  clearTimeout(readyTimer);
  if (timedOut) log.warn({ readyTimeoutMs }, "not every slot reported ready in time; they keep trying");
  if (config.dynamicGroups && discovery.mode === "gpu" && closing === null) {
    groups = new DynamicGroups({
      redis,
      keys: new RedisKeys(config.prefix),
      logger,
      host: config.workerId,
      reservations: reservationsOf(config),
      topology: await discoverTopology({
        nvidiaSmiPath: config.nvidiaSmiPath,
        timeoutMs: config.nvidiaSmiTimeoutMs,
        env: baseEnv,
        logger,
      }),
      slots: specs,
      reserveBytes: config.reserveBytes,
      groupDrainMs: config.groupDrainMs,
      keepAliveMs: config.keepAliveMs,
      ...(options.groupCheckMs === undefined ? {} : { checkMs: options.groupCheckMs }),
      control: {
        retire: (name) => live.get(name)?.retire(),
        stop: (name) => void live.get(name)?.stop(),
        start: (spec) => launch(spec).start(),
      },
    });
    groups.start();
    if (groups.possible) log.info({ groupDrainMs: config.groupDrainMs }, "dynamic GPU groups on");
  }
  log.info(
    { slots: specs.map((spec) => spec.id), mode: discovery.mode, metrics: server.url },
    "worker started with %d slot(s)",
    specs.length,
  );

  return {
    get slots() {
      return [...live.values()].map((slot) => ({
        id: slot.spec.id,
        name: slot.spec.name,
        kind: slot.spec.kind,
        gpuIndex: slot.spec.gpuIndex,
        pid: slot.pid,
        state: slot.state,
        restarts: slot.restarts,
      }));
    },
    discovery,
    groups: groups ?? new EventEmitter(),
    metricsUrl: server.url,
    close() {
      closing ??= (async () => {
        log.info("stopping the worker: draining slots");
        await groups?.close();
        await Promise.allSettled([...live.values()].map((slot) => slot.stop()));
        await recoveries.close();
        try {
          await server.close();
        } catch (error) {
          log.warn({ err: error }, "closing the metrics server failed");
        }
        log.info("worker stopped");
      })();
      return closing;
    },
  };
}

/**
 * How long after a slot's exit its jobs are looked for a second time: a claim the process
 * sent just before it died may reach Redis after the first look.
 */
const RECHECK_AFTER_MS = 1000;

/**
 * The supervisor's own Redis connection and its {@link SlotRecovery}: `recover` puts back a
 * dead slot process's jobs at once and again {@link RECHECK_AFTER_MS} later, logging what it
 * did; a recovery that fails leaves the jobs to BullMQ's stalled check. `close` waits for
 * the recoveries in flight, drops the pending second looks and quits the connection.
 */
function startRecoveries(
  redis: Redis,
  config: WorkerConfig,
  log: Logger,
  onRecovered: (slotId: string, jobs: number) => void,
): { recover(slotId: string, tokenPrefix: string): void; close(): Promise<void> } {
  const recovery = new SlotRecovery({ redis, keys: new RedisKeys(config.prefix), logger: log });
  const inFlight = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const run = (slotId: string, tokenPrefix: string, pass: number) => {
    const started = Date.now();
    const done = recovery.recover(tokenPrefix).then(
      (jobs) => {
        if (jobs.length > 0) onRecovered(slotId, jobs.length);
        if (jobs.length > 0 || pass === 1)
          log.info(
            { slot: slotId, tokenPrefix, jobs: jobs.map((job) => job.id), pass, ms: Date.now() - started },
            "put the dead slot's jobs back in their lanes",
          );
      },
      (error: unknown) =>
        log.warn(
          { err: error, slot: slotId, tokenPrefix },
          "could not put the dead slot's jobs back; BullMQ's stalled check will",
        ),
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };
  return {
    recover(slotId, tokenPrefix) {
      if (closed) return;
      run(slotId, tokenPrefix, 1);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closed) run(slotId, tokenPrefix, 2);
      }, RECHECK_AFTER_MS);
      timers.add(timer);
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...inFlight]);
      try {
        await redis.quit();
      } catch (error) {
        log.debug({ err: error }, "closing the supervisor's Redis connection failed");
      }
    },
  };
}

/** `slot/slot-main.js` next to this module, or the `.ts` source (run through tsx) when not compiled. */
function slotEntry(): { entry: string; execArgv: string[] } {
  const js = fileURLToPath(new URL("../slot/slot-main.js", import.meta.url));
  if (existsSync(js)) return { entry: js, execArgv: [] };
  const ts = fileURLToPath(new URL("../slot/slot-main.ts", import.meta.url));
  return { entry: ts, execArgv: ["--import", "tsx"] };
}

/**
 * Refuses to start on a Redis that may evict keys (see checkRedisFacts), and warns when it
 * has no persistence. A Redis that does not answer within a couple of seconds is no reason
 * to stop: the slots (and this connection) retry until it does, and the check is then left
 * to the scheduler.
 */
async function checkRedisAtStart(redis: Redis, config: WorkerConfig, log: Logger): Promise<void> {
  const findings = await guardRedis(redis, { allowEviction: config.redisAllowEviction, timeoutMs: 2000 });
  if (findings.unreachable) {
    log.warn(
      { err: findings.unreachable },
      "could not read Redis's settings at start; the slots will keep trying to reach it",
    );
    return;
  }
  for (const warning of findings.warnings) log.warn(warning);
  if (findings.refuse) throw new ConfigError("CORRAL_REDIS_URL", findings.refuse);
}
