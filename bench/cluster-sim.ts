/**
 * 12. The cluster simulator (issue 21): N simulated slots, many per process, each running
 * the real claim path (`Slot` from @corral/worker: claim loop, lane workers, heartbeats)
 * with an engine stand-in that sleeps through each job at a set token rate
 * (bench/lib/sim-engine.ts), against the bench's own redis-server and the real scheduler
 * (jobs go in through `POST /v1/jobs`). Beside it, at each size, raw BullMQ with the same
 * slots and lanes: plain `Worker`s whose processor sleeps as long.
 *
 * At each size (slots × models), with job lengths drawn from one seeded distribution:
 * 1. raw BullMQ, offered 1.5 × the slots' capacity (at most `maxRate`): its sustained rate;
 * 2. Corral: the submit path's Redis commands per job (the warm-up jobs, before any slot
 *    runs), the slots started a batch at a time (connections are measured after each
 *    batch; a size whose measured connections per slot would pass Redis's maxclients is
 *    not started, and says so), Redis commands per second with no work (heartbeats,
 *    stalled checks);
 * 3. Corral offered 50% of raw BullMQ's sustained rate: dispatch p50/p99 (job added →
 *    the slot handed it to its engine), Redis CPU, commands per job and per claim,
 *    scheduler CPU per job, connections;
 * 4. Corral offered what raw BullMQ was offered: its sustained rate, and the slot time
 *    left idle while jobs waited.
 * Every run checks that each submitted job completed exactly once.
 */
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Queue } from "bullmq";
import { Catalog, RedisKeys, requirementOn } from "@corral/shared";
import { totalCommands } from "./lib/bench-redis.js";
import { JOB_OPTIONS } from "./lib/bullmq-baseline.js";
import { CorralStack, STORIES } from "./lib/corral-stack.js";
import { JsonClient } from "./lib/http-client.js";
import { busyCores, machineJiffies, processCpuMicros } from "./lib/process-cpu.js";
import { runFigures, type RunFigures } from "./lib/sim-analysis.js";
import type { SimJobEvent } from "./lib/sim-engine.js";
import { FleetStartAborted, SimFleet, shares } from "./lib/sim-fleet.js";
import { ratio, round, sleep } from "./lib/stats.js";
import { runAlone } from "./lib/run-alone.js";
import type { BenchOptions, BenchResult } from "./lib/types.js";

/** One size of the simulated cluster. */
export interface SimSize {
  slots: number;
  models: number;
}

/** How the simulator runs; {@link simConfig} gives the full and the quick one. */
export interface SimConfig {
  sizes: SimSize[];
  /** The size the scale targets are judged at. */
  targetSize: SimSize;
  /** Sequences per slot (per loaded model; each slot has room for one model). */
  sequences: number;
  /** Tokens per second per job of the engine stand-in. */
  tokensPerSecond: number;
  /** Job lengths: `max_tokens` uniform in [min, max]. */
  tokens: { min: number; max: number };
  /** A model load of the stand-in, ms. */
  loadMs: number;
  /** Highest offered rate, jobs/s. */
  maxRate: number;
  /** Seconds each offered rate is held. */
  seconds: number;
  /** Longest wait for a run's jobs after its last submit, s. */
  drainSeconds: number;
  /** Seconds of the idle measurement (no jobs). */
  idleSeconds: number;
  /** Most processes the slots are spread over. */
  processes: number;
  /** Slots started at once in each process. */
  batch: number;
}

/** Parses "100x10,500x100" (slots x models). */
export function parseSizes(text: string): SimSize[] {
  return text.split(",").map((part) => {
    const match = /^\s*(\d+)\s*x\s*(\d+)\s*$/.exec(part);
    if (!match || Number(match[1]) < 1 || Number(match[2]) < 1)
      throw new Error(`CORRAL_BENCH_SIM_SIZES: expected sizes such as 100x10,500x100 (slots x models), got "${part}"`);
    return { slots: Number(match[1]), models: Number(match[2]) };
  });
}

export function simConfig(quick: boolean, sizes: string | null = null): SimConfig {
  const config = baseConfig(quick);
  return sizes === null ? config : { ...config, sizes: parseSizes(sizes) };
}

function baseConfig(quick: boolean): SimConfig {
  const tokens = { min: 4, max: 60 };
  if (quick)
    return {
      sizes: [{ slots: 4, models: 2 }],
      targetSize: { slots: 4, models: 2 },
      sequences: 1,
      tokensPerSecond: 400,
      tokens,
      loadMs: 5,
      maxRate: 60,
      seconds: 1,
      drainSeconds: 30,
      idleSeconds: 0.5,
      processes: 2,
      batch: 4,
    };
  return {
    sizes: [
      { slots: 10, models: 1 },
      { slots: 100, models: 10 },
      { slots: 100, models: 100 },
      { slots: 500, models: 10 },
      { slots: 500, models: 100 },
    ],
    targetSize: { slots: 500, models: 100 },
    sequences: 1,
    tokensPerSecond: 200,
    tokens,
    loadMs: 50,
    maxRate: 2000,
    seconds: 3,
    drainSeconds: 15,
    idleSeconds: 2,
    processes: 4,
    batch: 25,
  };
}

/** The same job lengths for both systems: a seeded generator (mulberry32). */
function jobLengths(count: number, range: { min: number; max: number }, seed: number): number[] {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: count }, () => range.min + Math.floor(next() * (range.max - range.min + 1)));
}

/** Jobs/s the slots can run when every sequence is busy. */
const capacityRate = (c: SimConfig, size: SimSize) =>
  (size.slots * c.sequences * c.tokensPerSecond) / ((c.tokens.min + c.tokens.max) / 2);

const modelId = (i: number) => `sim-${String(i).padStart(3, "0")}`;

/** A models folder of `count` links to stories260K: a catalog of that many models. */
async function catalogDir(modelsDir: string, count: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "corral-sim-models-"));
  for (let i = 0; i < count; i++) await symlink(join(modelsDir, `${STORIES}.gguf`), join(dir, `${modelId(i)}.gguf`));
  return dir;
}

/** Redis's CPU seconds (user + sys, the whole process) from INFO cpu. */
async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? Number.NaN);
  return field("used_cpu_user") + field("used_cpu_sys");
}

async function connectedClients(admin: Redis): Promise<number> {
  const info = await admin.info("clients");
  return Number(/^connected_clients:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

/** Sums CPU µs of the given pids (null when one cannot be read). */
function cpuOf(pids: readonly (number | undefined)[]): number | null {
  let total = 0;
  for (const pid of pids) {
    const micros = processCpuMicros(pid);
    if (micros === null) return null;
    total += micros;
  }
  return total;
}

/** CPU of Redis (INFO cpu), the scheduler, the slot processes and the whole machine, at one moment. */
interface CpuSample {
  at: number;
  redis: number;
  scheduler: number | null;
  slots: number | null;
  machine: ReturnType<typeof machineJiffies>;
}

async function cpuSample(
  admin: Redis,
  schedulerPid: number | undefined,
  slotPids: readonly number[],
): Promise<CpuSample> {
  return {
    at: performance.now(),
    redis: (await redisCpuSeconds(admin)) * 1e6,
    scheduler: schedulerPid === undefined ? null : processCpuMicros(schedulerPid),
    slots: cpuOf(slotPids),
    machine: machineJiffies(),
  };
}

/** Cores each part used between two samples (the machine's: all its busy cores, this bench and others included). */
function coresBetween(a: CpuSample, b: CpuSample): Record<string, number | null> {
  const wallUs = (b.at - a.at) * 1000;
  const cores = (x: number | null, y: number | null) => (x === null || y === null ? null : round((y - x) / wallUs, 2));
  return {
    redis: cores(a.redis, b.redis),
    scheduler: cores(a.scheduler, b.scheduler),
    slots: cores(a.slots, b.slots),
    machine_busy: round(busyCores(a.machine, b.machine), 2),
  };
}

interface OfferOptions {
  rate: number;
  lengths: readonly number[];
  /** Submits job `i` (of length `lengths[i]`); resolves with its id. */
  submit: (i: number, maxTokens: number) => Promise<string>;
  fleet: SimFleet;
  capacity: number;
  drainSeconds: number;
}

/**
 * Offers the jobs open loop at `rate`, then collects the fleet's events until every job
 * finished or the drain time ran out.
 */
async function offer(o: OfferOptions): Promise<{ figures: RunFigures; events: SimJobEvent[]; submitErrors: number }> {
  await o.fleet.events(); // drops what earlier runs left
  const ids: string[] = [];
  let submitErrors = 0;
  const submits: Promise<void>[] = [];
  const startedAt = Date.now();
  const t0 = performance.now();
  const interval = 1000 / o.rate;
  for (const [i, length] of o.lengths.entries()) {
    const ahead = t0 + i * interval - performance.now();
    if (ahead >= 1) await sleep(ahead);
    submits.push(
      o.submit(i, length).then(
        (id) => void ids.push(id),
        () => void (submitErrors += 1),
      ),
    );
  }
  await Promise.all(submits);
  const deadline = Date.now() + o.drainSeconds * 1000;
  const events: SimJobEvent[] = [];
  const done = new Set<string>();
  const wanted = new Set(ids);
  for (;;) {
    for (const event of await o.fleet.events()) {
      events.push(event);
      if (event.ok && wanted.has(event.id)) done.add(event.id);
    }
    if (done.size >= wanted.size || Date.now() > deadline) break;
    await sleep(100);
  }
  const figures = runFigures({
    offered: o.rate,
    ids,
    events,
    capacity: o.capacity,
    startedAt,
    endAt: Date.now(),
  });
  return { figures, events, submitErrors };
}

interface BullSize {
  offered: RunFigures;
  /** Cores used over the run (no scheduler: the producer is this process). */
  cores: Record<string, number | null>;
  connections: number;
  redis_cpu_us_per_job: number | null;
  redis_commands_per_job: number | null;
}

async function runBull(o: BenchOptions, c: SimConfig, size: SimSize, admin: Redis, offered: number): Promise<BullSize> {
  const prefix = "sim-bull";
  const lanes = Array.from({ length: size.models }, (_, i) => `lane-${i}`);
  // Each slot serves one lane (slots ≥ lanes), or its share of them.
  const slotLanes = (s: number) =>
    size.slots >= size.models ? [lanes[s % size.models]!] : lanes.filter((_, l) => l % size.slots === s);
  const slots = Array.from({ length: size.slots }, (_, s) => ({ id: `bull-${s}`, lanes: slotLanes(s) }));
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null, connectionName: "sim-bull-producer" });
  const queues = lanes.map((lane) => new Queue(lane, { connection, prefix }));
  let fleet: SimFleet | null = null;
  try {
    fleet = await SimFleet.start({
      kind: "bullmq",
      starts: shares(slots, Math.min(2, c.processes)).map((share) => ({
        redisUrl: o.redisUrl,
        prefix,
        slots: share,
        batch: c.batch,
        sequences: c.sequences,
        tokensPerSecond: c.tokensPerSecond,
      })),
      label: `sim-${size.slots}x${size.models}`,
      logDir: o.logDir,
    });
    let counter = 0;
    const submit = async (i: number, maxTokens: number) => {
      const job = await queues[i % lanes.length]!.add(
        "sim",
        { max_tokens: maxTokens },
        { ...JOB_OPTIONS, jobId: `j${++counter}` },
      );
      return job.id!;
    };
    const capacity = size.slots * c.sequences;
    // Warm-up (JIT, connections), then the measured run.
    await offer({
      rate: offered,
      lengths: jobLengths(Math.min(200, 2 * size.slots), c.tokens, 7),
      submit,
      fleet,
      capacity,
      drainSeconds: c.drainSeconds,
    });
    await o.redis.resetStats();
    const cpu0 = await cpuSample(admin, undefined, fleet.pids);
    const run = await offer({
      rate: offered,
      lengths: jobLengths(Math.round(offered * c.seconds), c.tokens, 1),
      submit,
      fleet,
      capacity,
      drainSeconds: c.drainSeconds,
    });
    const cpu1 = await cpuSample(admin, undefined, fleet.pids);
    const commands = totalCommands(await o.redis.commandCounts());
    const completed = run.figures.completed_once + run.figures.completed_twice;
    return {
      offered: run.figures,
      cores: coresBetween(cpu0, cpu1),
      connections: await connectedClients(admin),
      redis_cpu_us_per_job: completed > 0 ? round((cpu1.redis - cpu0.redis) / completed, 0) : null,
      redis_commands_per_job: completed > 0 ? round(commands / completed, 1) : null,
    };
  } finally {
    await fleet?.close();
    await Promise.allSettled(queues.map((queue) => queue.close()));
    connection.disconnect();
  }
}

interface CorralSize {
  /** Why the size did not run (the measured connections would pass Redis's limit); null: it ran. */
  not_run: string | null;
  connections: number | null;
  connections_per_slot: number | null;
  submit_commands_per_job: number | null;
  idle_commands_per_s: number | null;
  half_rate: (RunFigures & Record<string, unknown>) | null;
  offered: (RunFigures & { cores: Record<string, number | null> }) | null;
  /** Corral's sustained rate: the achieved rate of the offered run, or of the half-rate run when that one already fell behind. */
  sustained_per_s: number | null;
}

async function runCorral(
  o: BenchOptions,
  c: SimConfig,
  size: SimSize,
  admin: Redis,
  rates: { half: number; offered: number },
): Promise<CorralSize> {
  const prefix = `sim-${size.slots}x${size.models}`;
  const keys = new RedisKeys(prefix);
  const result: CorralSize = {
    not_run: null,
    connections: null,
    connections_per_slot: null,
    submit_commands_per_job: null,
    idle_commands_per_s: null,
    half_rate: null,
    offered: null,
    sustained_per_s: null,
  };
  const dir = await catalogDir(o.modelsDir, size.models);
  const stack = await CorralStack.start({
    redisUrl: o.redisUrl,
    modelsDir: o.modelsDir,
    catalogDir: dir,
    prefix,
    label: `sim-${size.slots}x${size.models}`,
    logDir: o.logDir,
    profileDir: o.profileDir,
    slots: 0,
    sequences: c.sequences,
  });
  const client = new JsonClient(stack.url, 128);
  let fleet: SimFleet | null = null;
  try {
    const catalog = Catalog.parse(JSON.parse((await admin.get(keys.catalog)) ?? "null"));
    if (catalog.models.length !== size.models)
      throw new Error(`the catalog has ${catalog.models.length} models, not ${size.models}`);
    const modelBytes = Math.max(...catalog.models.map((model) => requirementOn("cpu", model)));
    const submit = async (i: number, maxTokens: number) => {
      const response = await client.post<{ id: string }>("/v1/jobs", {
        model: modelId(i % size.models),
        prompt: "Once upon a time",
        max_tokens: maxTokens,
        temperature: 0,
      });
      if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}`);
      return response.body.id;
    };

    // The submit path's commands, alone: warm-up jobs on every lane (which registers the
    // lanes), before any slot runs.
    const warm = jobLengths(Math.max(2 * size.models, Math.min(200, 2 * size.slots)), c.tokens, 7);
    await o.redis.resetStats();
    const warmIds = await Promise.all(warm.map((length, i) => submit(i, length)));
    result.submit_commands_per_job = round(totalCommands(await o.redis.commandCounts()) / warm.length, 1);

    const maxClients = Number(((await admin.config("GET", "maxclients")) as string[])[1]);
    const base = await connectedClients(admin);
    const ids = Array.from({ length: size.slots }, (_, s) => `sim${s}`);
    let measuredPerSlot: number | null = null;
    const env = {
      CORRAL_REDIS_URL: o.redisUrl,
      CORRAL_PREFIX: prefix,
      CORRAL_MODELS_DIR: dir,
      CORRAL_WORKER_ID: "sim",
      CORRAL_CPU: "true",
      CORRAL_LOG_LEVEL: "warn",
    };
    try {
      fleet = await SimFleet.start({
        kind: "corral",
        starts: shares(ids, Math.min(c.processes, Math.ceil(size.slots / 10))).map((share) => ({
          env,
          slots: share,
          batch: c.batch,
          tokensPerSecond: c.tokensPerSecond,
          loadMs: c.loadMs,
          modelBytes,
        })),
        label: prefix,
        logDir: o.logDir,
        // After each batch: the connections its slots opened once they looked at the lanes.
        onBatch: async (up) => {
          // Each slot opens its lane connections on its first look: wait until the count settles.
          let clients = await connectedClients(admin);
          for (let tries = 0; tries < 20; tries++) {
            await sleep(250);
            const now = await connectedClients(admin);
            if (now === clients) break;
            clients = now;
          }
          const perSlot = (clients - base) / up;
          measuredPerSlot = perSlot;
          const projected = base + perSlot * size.slots;
          if (projected <= 0.95 * maxClients) return null;
          return (
            `${size.slots} slots would hold ~${Math.round(projected)} Redis connections ` +
            `(${round(perSlot, 1)} per slot, measured on the first ${up}), over this Redis's maxclients ${maxClients}`
          );
        },
      });
    } catch (error) {
      if (!(error instanceof FleetStartAborted)) throw error;
      result.not_run = error.message;
      result.connections_per_slot = round(measuredPerSlot, 1);
      o.log(`  cluster_sim ${prefix}: not run: ${error.message}`);
      return result;
    }
    const capacity = size.slots * c.sequences;
    // The warm-up jobs run now.
    const done = new Set<string>();
    const warmDeadline = Date.now() + (c.drainSeconds + 30) * 1000;
    while (done.size < warmIds.length && Date.now() < warmDeadline) {
      for (const event of await fleet.events()) if (event.ok) done.add(event.id);
      await sleep(100);
    }
    if (done.size < warmIds.length)
      o.log(
        `  cluster_sim ${prefix}: ${warmIds.length - done.size} of ${warmIds.length} warm-up jobs still not done; measuring anyway`,
      );
    result.connections = await connectedClients(admin);
    result.connections_per_slot = round((result.connections - base) / size.slots, 1);

    // No work: what the slots cost Redis by just being there.
    await o.redis.resetStats();
    await sleep(c.idleSeconds * 1000);
    result.idle_commands_per_s = round(totalCommands(await o.redis.commandCounts()) / c.idleSeconds, 0);

    // Half of raw BullMQ's sustained rate: dispatch and costs.
    await o.redis.resetStats();
    const cpu0 = await cpuSample(admin, stack.schedulerPid, fleet.pids);
    const half = await offer({
      rate: rates.half,
      lengths: jobLengths(Math.max(4, Math.round(rates.half * c.seconds)), c.tokens, 2),
      submit,
      fleet,
      capacity,
      drainSeconds: c.drainSeconds,
    });
    const cpu1 = await cpuSample(admin, stack.schedulerPid, fleet.pids);
    const commands = totalCommands(await o.redis.commandCounts());
    const completed = half.figures.completed_once + half.figures.completed_twice;
    const per = (value: number | null) => (value === null || completed === 0 ? null : value / completed);
    result.half_rate = {
      ...half.figures,
      submit_errors: half.submitErrors,
      connections: await connectedClients(admin),
      cores: coresBetween(cpu0, cpu1),
      redis_cpu_us_per_job: round(per(cpu1.redis - cpu0.redis), 0),
      redis_commands_per_job: round(per(commands), 1),
      // Everything but the submit path, per job claimed (idle polling, heartbeats and stalled checks included).
      redis_commands_per_claim: round(
        per(commands - (result.submit_commands_per_job ?? 0) * half.figures.submitted),
        1,
      ),
      scheduler_cpu_us_per_job: round(
        per(cpu0.scheduler === null || cpu1.scheduler === null ? null : cpu1.scheduler - cpu0.scheduler),
        0,
      ),
      slots_cpu_us_per_job: round(per(cpu0.slots === null || cpu1.slots === null ? null : cpu1.slots - cpu0.slots), 0),
    };
    o.log(
      `  cluster_sim ${prefix} corral at ${rates.half}/s: achieved ${half.figures.achieved_per_s}/s, ` +
        `dispatch p99 ${half.figures.dispatch_p99_ms} ms, ${result.half_rate.redis_commands_per_job} commands/job`,
    );
    if (!half.figures.drained) {
      // It already fell behind at half the rate: that is its sustained rate.
      result.sustained_per_s = half.figures.achieved_per_s;
      return result;
    }
    const full0 = await cpuSample(admin, stack.schedulerPid, fleet.pids);
    const full = await offer({
      rate: rates.offered,
      lengths: jobLengths(Math.round(rates.offered * c.seconds), c.tokens, 1),
      submit,
      fleet,
      capacity,
      drainSeconds: c.drainSeconds,
    });
    result.offered = {
      ...full.figures,
      cores: coresBetween(full0, await cpuSample(admin, stack.schedulerPid, fleet.pids)),
    };
    result.sustained_per_s = full.figures.achieved_per_s;
    return result;
  } finally {
    client.close();
    await fleet?.close();
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  }
}

interface SizeResult extends SimSize {
  /** Jobs/s the slots run with every sequence busy (the engine stand-in's rate). */
  capacity_per_s: number;
  /** The rate both systems were offered to find what they sustain. */
  offered_per_s: number;
  half_rate_per_s: number;
  bullmq: BullSize;
  corral: CorralSize;
  /** Corral's sustained rate / raw BullMQ's. */
  ratio: number | null;
}

/** What the scale table shows of one size. */
function tableRow(r: SizeResult): string[] {
  const h = r.corral.half_rate;
  const text = (value: unknown) => (value === null || value === undefined ? "–" : String(value));
  return [
    text(r.slots),
    text(r.models),
    text(r.offered_per_s),
    text(r.bullmq.offered.achieved_per_s),
    r.corral.not_run ? "not run" : text(r.corral.sustained_per_s),
    text(r.ratio),
    text(r.half_rate_per_s),
    h ? `${text(h.dispatch_p50_ms)} / ${text(h.dispatch_p99_ms)}` : "–",
    text(h?.redis_cpu_us_per_job),
    `${text(h?.redis_commands_per_job)} / ${text(h?.redis_commands_per_claim)}`,
    text(r.corral.idle_commands_per_s),
    `${text(r.corral.connections)} (${text(r.corral.connections_per_slot)}/slot)`,
    text(h?.scheduler_cpu_us_per_job),
    `${text(r.corral.offered?.idle_while_waiting_ratio)} / ${text(r.bullmq.offered.idle_while_waiting_ratio)}`,
  ];
}

const TABLE_HEAD = [
  "slots",
  "models",
  "offered/s",
  "bullmq/s",
  "corral/s",
  "ratio",
  "half rate/s",
  "dispatch p50 / p99 ms",
  "Redis CPU µs/job",
  "cmds/job / per claim",
  "idle cmds/s",
  "connections",
  "sched CPU µs/job",
  "idle∧waiting corral / bullmq",
];

/** The scale table, Markdown. */
export function scaleTable(rows: readonly SizeResult[]): string {
  const cells = [TABLE_HEAD, ...rows.map(tableRow)];
  const widths = TABLE_HEAD.map((_, col) => Math.max(...cells.map((row) => row[col]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col]!)).join(" | ")} |`;
  return [line(cells[0]!), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...cells.slice(1).map(line)].join(
    "\n",
  );
}

interface Target {
  name: string;
  target: string;
  value: number | null;
  met: boolean;
  /** Why, in figures, when missed. */
  reason: string | null;
}

/** Idle slot time while work waits counts as ≈ 0 up to this share of all slot time. */
const IDLE_WHILE_WAITING_MAX = 0.05;

function judge(at: SizeResult | undefined, size: SimSize): Target[] {
  const label = `${size.slots} slots × ${size.models} models`;
  if (!at)
    return ["sustained_ratio", "dispatch_p99_at_half", "idle_while_waiting"].map((name) => ({
      name,
      target: name,
      value: null,
      met: false,
      reason: `${label} was not in the run`,
    }));
  const notRun = at.corral.not_run ? `not run: ${at.corral.not_run}` : null;
  const half = at.corral.half_rate;
  const ratioMet = at.ratio !== null && at.ratio >= 0.6;
  const p99 = half?.dispatch_p99_ms ?? null;
  const idle = at.corral.offered?.idle_while_waiting_ratio ?? null;
  return [
    {
      name: "sustained_ratio",
      target: `Corral's sustained rate >= 0.6 × raw BullMQ's (${label})`,
      value: at.ratio,
      met: ratioMet,
      reason: ratioMet
        ? null
        : (notRun ??
          `Corral sustained ${at.corral.sustained_per_s} jobs/s against raw BullMQ's ${at.bullmq.offered.achieved_per_s}` +
            (half && !half.drained ? ` (it fell behind already at half that rate, ${at.half_rate_per_s}/s)` : "")),
    },
    {
      name: "dispatch_p99_at_half",
      target: `dispatch p99 <= 20 ms at 50% of raw BullMQ's rate (${at.half_rate_per_s}/s)`,
      value: p99,
      met: p99 !== null && p99 <= 20 && Boolean(half?.drained),
      reason:
        p99 !== null && p99 <= 20 && half?.drained
          ? null
          : (notRun ??
            (half && !half.drained
              ? `${half.missing} of ${half.submitted} jobs not done within the drain time; p99 of those done ${p99} ms`
              : `p99 ${p99} ms`)),
    },
    {
      name: "idle_while_waiting",
      target: `slot time idle while jobs wait <= ${IDLE_WHILE_WAITING_MAX} of all slot time (offered ${at.offered_per_s}/s)`,
      value: idle,
      met: idle !== null && idle <= IDLE_WHILE_WAITING_MAX,
      reason:
        idle !== null && idle <= IDLE_WHILE_WAITING_MAX
          ? null
          : (notRun ??
            (idle === null
              ? "no offered run (Corral fell behind at half rate)"
              : `${idle} of slot time idle while jobs waited (raw BullMQ: ${at.bullmq.offered.idle_while_waiting_ratio})`)),
    },
  ];
}

export async function benchClusterSim(o: BenchOptions): Promise<BenchResult> {
  const c = simConfig(o.quick, o.simSizes);
  const admin = new Redis(o.redisUrl, { maxRetriesPerRequest: 1, connectionName: "sim-admin" });
  const results: SizeResult[] = [];
  try {
    // Room for the many connections of the larger sizes (the process's open-file limit caps it).
    try {
      await admin.config("SET", "maxclients", "19000");
    } catch (error) {
      o.log(`  cluster_sim: could not raise maxclients (${error instanceof Error ? error.message : String(error)})`);
    }
    for (const size of c.sizes) {
      const capacity = capacityRate(c, size);
      const offered = Math.round(Math.min(c.maxRate, 1.5 * capacity));
      await o.redis.flush();
      const bullmq = await runBull(o, c, size, admin, offered);
      o.log(
        `  cluster_sim ${size.slots}x${size.models} raw BullMQ offered ${offered}/s: ` +
          `achieved ${bullmq.offered.achieved_per_s}/s, dispatch p99 ${bullmq.offered.dispatch_p99_ms} ms`,
      );
      const half = Math.max(1, Math.round(bullmq.offered.achieved_per_s / 2));
      await o.redis.flush();
      const corral = await runCorral(o, c, size, admin, { half, offered });
      results.push({
        ...size,
        capacity_per_s: round(capacity, 0)!,
        offered_per_s: offered,
        half_rate_per_s: half,
        bullmq,
        corral,
        ratio: ratio(corral.sustained_per_s, bullmq.offered.achieved_per_s, 2),
      });
      o.log(
        `  cluster_sim ${size.slots}x${size.models}: corral ${corral.not_run ? "not run" : `${corral.sustained_per_s}/s`}, ` +
          `ratio ${results.at(-1)!.ratio}`,
      );
    }
  } finally {
    admin.disconnect();
  }
  const at = results.find((r) => r.slots === c.targetSize.slots && r.models === c.targetSize.models);
  const targets = judge(at, c.targetSize);
  // The scale table, then each target met or missed with its figure and reason (the runner prints it).
  const table = [
    scaleTable(results),
    "",
    `targets at ${c.targetSize.slots} slots × ${c.targetSize.models} models:`,
    ...targets.map(
      (t) => `- ${t.target}: ${t.met ? "met" : "MISSED"} (${t.value ?? "–"})${t.reason ? `: ${t.reason}` : ""}`,
    ),
  ].join("\n");
  const runs = results.flatMap((r) => [r.bullmq.offered, r.corral.half_rate, r.corral.offered]);
  const every = runs.filter((run): run is RunFigures => run !== null);
  return {
    corral: at?.corral.sustained_per_s ?? null,
    baseline: at?.bullmq.offered.achieved_per_s ?? null,
    ratio: at?.ratio ?? null,
    unit: `jobs/s sustained, ${c.targetSize.slots} simulated slots × ${c.targetSize.models} models`,
    target: "ratio >= 0.6; dispatch p99 <= 20 ms at 50% of raw BullMQ's rate; idle while work waits ≈ 0",
    met: targets.every((t) => t.met),
    targets,
    exactly_once: every.every((run) => run.completed_twice === 0),
    all_completed: every.every((run) => run.missing === 0),
    table,
    config: c,
    sizes: results,
  };
}

runAlone(import.meta.url, "cluster_sim");
