import { hostname } from "node:os";
import { z } from "zod";
import {
  COMMON_ENV,
  CommonEnv,
  ConfigError,
  boolean,
  byteSize,
  commonConfig,
  duration,
  integer,
  parseEnv,
  port,
  type CommonConfig,
  type Env,
  type EnvVariableDoc,
} from "@corral/shared";

/** One documented environment variable. The CLI makes a flag of each (`CORRAL_GPUS` → `--gpus`). */
export type EnvVarDoc = EnvVariableDoc;

/**
 * Every variable the worker reads, for `--help`, the CLI flags and the docs. The ones it
 * shares with the scheduler (COMMON_ENV) come first.
 */
export const WORKER_ENV: readonly EnvVarDoc[] = [
  ...COMMON_ENV,
  {
    name: "CORRAL_NVIDIA_SMI",
    default: "nvidia-smi",
    description: "The nvidia-smi program. When it does not exist the worker runs on the CPU.",
  },
  { name: "CORRAL_NVIDIA_SMI_TIMEOUT_MS", default: "5000", description: "Time limit for one nvidia-smi call." },
  {
    name: "CORRAL_GPUS",
    default: null,
    description: "Comma-separated nvidia-smi indexes to serve, e.g. 0,2. Default: every GPU.",
  },
  {
    name: "CORRAL_GPU_GROUPS",
    default: null,
    description:
      "GPUs that run as one slot, a model split across them by llama.cpp: groups of nvidia-smi indexes joined by `+`, separated by `,`, e.g. `0+1,2+3`. A grouped GPU gets no slot of its own; MIG GPUs cannot be grouped. Default: none (one slot per GPU).",
  },
  {
    name: "CORRAL_DYNAMIC_GROUPS",
    default: "true",
    description:
      "Form GPU groups from demand: when a model too big for any one GPU of this host waits, the GPUs of the group the placement policy chooses stop claiming at their next idle moment (at the latest after CORRAL_GROUP_DRAIN_MS) and one slot over them runs it; that slot exits after CORRAL_KEEP_ALIVE idle and the GPUs get their own slots back. GPUs in CORRAL_GPU_GROUPS and MIG GPUs never join one.",
  },
  {
    name: "CORRAL_GROUP_DRAIN_MS",
    default: "60s",
    description:
      "The bound on a waiting big model's wait for its group: this long after the group was chosen, its GPUs' slots stop claiming other models' jobs (those running get CORRAL_DRAIN_MS to finish, then go back to their lanes), however many small jobs keep arriving.",
  },
  {
    name: "CORRAL_RESERVE_GPUS",
    default: null,
    description:
      "GPUs kept for named models: `<indexes>=<model>|<model>` joined by `;`, e.g. `0,1=llama-70b;3=embed|rerank`. A reserved GPU (and each of its MIG devices) claims only those models' jobs. Default: none.",
  },
  { name: "CORRAL_CPU", default: "false", description: "Ignore GPUs and run CORRAL_CPU_SLOTS CPU slots." },
  { name: "CORRAL_CPU_SLOTS", default: "1", description: "Number of slots (processes) when running on the CPU." },
  {
    name: "CORRAL_THREADS",
    default: null,
    description:
      "llama.cpp threads per slot. Default: on the CPU, each model keeps the faster of 1 thread and the cores divided by the slots, timed for about a second when it first loads (a tiny model runs ~10× faster on 1 thread of a busy 2-core host); on GPU slots, the cores divided by the slots.",
  },
  {
    name: "CORRAL_VRAM_RESERVE",
    default: null,
    description:
      "Memory each slot keeps free (bytes or 1.5GiB). Default: min(8% of the GPU's total, 1.6 GiB) on GPUs, the same of total RAM on CPU slots.",
  },
  {
    name: "CORRAL_SWAP_AFTER_MS",
    default: "30s",
    description: "A slot leaves its loaded model for another lane once that lane's head job has waited this long.",
  },
  { name: "CORRAL_KEEP_ALIVE", default: "5m", description: "An idle model is unloaded after this long." },
  {
    name: "CORRAL_DRAIN_MS",
    default: "30s",
    description: "On SIGTERM, how long active jobs may run on before they are released to their lanes.",
  },
  {
    name: "CORRAL_JOB_TIMEOUT_MS",
    default: "10m",
    description:
      "Most wall time one job may generate, from when it holds a sequence; a job over it is stopped and fails with job_timeout (not retried). 0: no limit.",
  },
  {
    name: "CORRAL_JOB_MIN_TOKENS_PER_SECOND",
    default: "0.1",
    description:
      "Slowest generation allowed, in completion tokens per second since the job's first token, checked once CORRAL_JOB_RATE_GRACE_MS have passed; a slower job (a response_format grammar too heavy to sample, a stuck device) is stopped and fails with job_too_slow (not retried). The default only catches jobs that are all but stuck (a busy 2-core CPU ran stories260K at 0.4 tokens/s per job); raise it to what your hardware always beats. 0: no limit.",
  },
  {
    name: "CORRAL_PREFIX_REUSE",
    default: "true",
    description:
      "Keep each context sequence's evaluated tokens after a job, and when the next job's prompt on it starts with the same tokens (a shared system prompt, a chat's earlier turns) evaluate only the rest, as llama.cpp's server does with cache_prompt; jobs go to the free sequence holding the longest prefix of their prompt. A job run alone gives the same text either way. false: every sequence is cleared after each job.",
  },
  {
    name: "CORRAL_JOB_RATE_GRACE_MS",
    default: "30s",
    description: "How long after its first token a job runs before its token rate is checked.",
  },
  {
    name: "CORRAL_STALLED_INTERVAL_MS",
    default: "30000",
    description:
      "BullMQ stalled-job check interval. Every worker on one Redis must use the same value: the check is shared through one Redis key.",
  },
  {
    name: "CORRAL_LOCK_DURATION_MS",
    default: "30000",
    description:
      "BullMQ job lock duration (renewed every half of it). Every worker on one Redis must use the same value.",
  },
  {
    name: "CORRAL_HEARTBEAT_MS",
    default: "2000",
    description: "How often each slot writes its state to Redis (the key expires after 3 intervals).",
  },
  {
    name: "CORRAL_OOM_COOLDOWN_MS",
    default: "10m",
    description: "After an out-of-memory load, the model counts as not fitting on that slot for this long.",
  },
  {
    name: "CORRAL_WORKER_METRICS_PORT",
    default: "9464",
    description: "Port of the worker's Prometheus /metrics (0: a random free port).",
  },
  {
    name: "CORRAL_WORKER_METRICS_HOST",
    default: "0.0.0.0",
    description:
      "Address the worker's /metrics binds to (0.0.0.0: every interface, for a Prometheus on another machine; 127.0.0.1: this machine only).",
  },
  {
    name: "CORRAL_WORKER_ID",
    default: null,
    description: "This worker's name in heartbeats and job records. Default: the host name.",
  },
  { name: "CORRAL_TOKEN_STREAM_TTL", default: "1h", description: "How long a job's token stream is kept in Redis." },
];

/** A comma-separated list of GPU indexes, e.g. `0,2`. */
const gpuList = z.preprocess(
  (value) => {
    if (typeof value !== "string" || value.trim() === "" || value.trim().toLowerCase() === "all") return undefined;
    const parts = value.split(",").map((part) => part.trim());
    return parts.every((part) => /^\d+$/.test(part)) ? parts.map(Number) : value;
  },
  z.array(z.number().int().min(0), { error: "expected comma-separated GPU indexes such as 0,2" }).min(1).optional(),
);

/** `0,1=llama-70b;3=embed|rerank` → GPU index → the models it is kept for. */
const gpuReservations = z.preprocess(
  (value) => {
    if (typeof value !== "string" || value.trim() === "") return undefined;
    const reservations: [number, string[]][] = [];
    for (const part of value
      .split(";")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "")) {
      const match = /^(\d+(?:\s*,\s*\d+)*)\s*=\s*([^=;]+)$/.exec(part);
      if (match === null) return value;
      const models = match[2]!.split("|").map((model) => model.trim());
      if (models.some((model) => !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(model))) return value;
      for (const index of match[1]!.split(",")) reservations.push([Number(index.trim()), models]);
    }
    return reservations;
  },
  z
    .array(z.tuple([z.number().int().min(0), z.array(z.string())]), {
      error: "expected <gpu indexes>=<model>|<model>, joined by ';', such as 0,1=llama-70b;3=embed|rerank",
    })
    .optional(),
);

/** `0+1,2+3` → [[0, 1], [2, 3]]. */
const gpuGroups = z.preprocess(
  (value) => {
    if (typeof value !== "string" || value.trim() === "") return undefined;
    const groups = value.split(",").map((group) => group.split("+").map((part) => part.trim()));
    return groups.every((group) => group.length >= 2 && group.every((part) => /^\d+$/.test(part)))
      ? groups.map((group) => group.map(Number))
      : value;
  },
  z
    .array(z.array(z.number().int().min(0)).min(2), {
      error: "expected groups of at least two GPU indexes joined by '+', separated by ',', such as 0+1,2+3",
    })
    .optional(),
);

const WorkerEnv = CommonEnv.extend({
  CORRAL_NVIDIA_SMI: z.preprocess(
    (v) => (typeof v === "string" && v.trim() === "" ? undefined : v),
    z.string().default("nvidia-smi"),
  ),
  CORRAL_NVIDIA_SMI_TIMEOUT_MS: duration.default(5000),
  CORRAL_GPUS: gpuList,
  CORRAL_GPU_GROUPS: gpuGroups,
  CORRAL_RESERVE_GPUS: gpuReservations,
  CORRAL_DYNAMIC_GROUPS: boolean.default(true),
  CORRAL_GROUP_DRAIN_MS: duration.default(60_000),
  CORRAL_CPU: boolean.default(false),
  CORRAL_CPU_SLOTS: integer(1, 256).default(1),
  CORRAL_THREADS: integer(1, 1024).optional(),
  CORRAL_VRAM_RESERVE: byteSize.optional(),
  CORRAL_SWAP_AFTER_MS: duration.default(30_000),
  CORRAL_KEEP_ALIVE: duration.default(5 * 60_000),
  CORRAL_DRAIN_MS: duration.default(30_000),
  CORRAL_JOB_TIMEOUT_MS: duration.default(10 * 60_000),
  CORRAL_JOB_MIN_TOKENS_PER_SECOND: z.preprocess(
    (v) => (typeof v === "string" && v.trim() === "" ? undefined : v),
    z.coerce
      .number({ message: "expected a number of tokens per second" })
      .min(0, "expected 0 (no limit) or more tokens per second")
      .max(1_000_000, "expected at most 1000000 tokens per second")
      .default(0.1),
  ),
  CORRAL_JOB_RATE_GRACE_MS: duration.default(30_000),
  CORRAL_PREFIX_REUSE: boolean.default(true),
  CORRAL_STALLED_INTERVAL_MS: duration.default(30_000),
  CORRAL_LOCK_DURATION_MS: duration.default(30_000),
  CORRAL_HEARTBEAT_MS: duration.default(2000),
  CORRAL_OOM_COOLDOWN_MS: duration.default(10 * 60_000),
  CORRAL_WORKER_METRICS_PORT: port.default(9464),
  CORRAL_WORKER_METRICS_HOST: z
    .preprocess(
      (value) => (typeof value === "string" && value.trim() === "" ? undefined : value),
      z
        .string()
        .regex(/^[A-Za-z0-9.:[\]-]{1,255}$/, "expected an IP address or host name such as 127.0.0.1 or 0.0.0.0"),
    )
    .default("0.0.0.0"),
  CORRAL_WORKER_ID: z.preprocess(
    (v) => (typeof v === "string" && v.trim() === "" ? undefined : v),
    z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, "expected letters, digits, '.', '_' or '-' (at most 64)")
      .optional(),
  ),
  CORRAL_TOKEN_STREAM_TTL: duration.default(3600_000),
});

/** The worker's configuration. Times in ms, sizes in bytes. */
export interface WorkerConfig extends CommonConfig {
  nvidiaSmiPath: string;
  nvidiaSmiTimeoutMs: number;
  /** nvidia-smi indexes to serve; null: all of them. */
  gpus: number[] | null;
  /** GPUs that run as one slot each group (`CORRAL_GPU_GROUPS`); empty: none. */
  gpuGroups: number[][];
  /**
   * GPU index → the only models it claims (`CORRAL_RESERVE_GPUS`); empty: none reserved. A
   * plain record, since the config goes to slot processes as JSON.
   */
  reserveGpus: Record<number, string[]>;
  /** Form groups of this host's whole GPUs for waiting models too big for one (`CORRAL_DYNAMIC_GROUPS`). */
  dynamicGroups: boolean;
  /** How long a chosen group's slots may go on claiming other models' jobs (`CORRAL_GROUP_DRAIN_MS`). */
  groupDrainMs: number;
  /** Run CPU slots even when GPUs exist. */
  cpu: boolean;
  cpuSlots: number;
  /** llama.cpp threads per slot; null: calibrated per model on the CPU (see CORRAL_THREADS' doc), else the cores divided by the slots. */
  threads: number | null;
  /** Memory each slot keeps free; null: min(8%, 1.6 GiB) of the device's total. */
  reserveBytes: number | null;
  swapAfterMs: number;
  keepAliveMs: number;
  drainMs: number;
  /** Wall time and slowest token rate of every job (`CORRAL_JOB_*`); 0s: no limit. */
  jobLimits: { timeoutMs: number; minTokensPerSecond: number; rateGraceMs: number };
  /** Keep sequences' tokens between jobs and reuse a shared prompt prefix (`CORRAL_PREFIX_REUSE`). */
  prefixReuse: boolean;
  stalledIntervalMs: number;
  lockDurationMs: number;
  heartbeatMs: number;
  oomCooldownMs: number;
  metricsPort: number;
  /** Address `/metrics` binds to. */
  metricsHost: string;
  workerId: string;
  tokenStreamTtlSeconds: number;
  /** Half-life of tenants' usage (fair share). */
}

/**
 * Reads the worker's configuration from `env` (process.env in `main`, a plain object in
 * tests). A bad value throws a `ConfigError` naming the variable.
 */
export function loadConfig(env: Env): WorkerConfig {
  const parsed = parseEnv(WorkerEnv, env);
  if (parsed.CORRAL_LOCK_DURATION_MS < 1000)
    throw new ConfigError(
      "CORRAL_LOCK_DURATION_MS",
      `expected at least 1000 ms (got ${parsed.CORRAL_LOCK_DURATION_MS})`,
    );
  if (parsed.CORRAL_STALLED_INTERVAL_MS < 500)
    throw new ConfigError(
      "CORRAL_STALLED_INTERVAL_MS",
      `expected at least 500 ms (got ${parsed.CORRAL_STALLED_INTERVAL_MS})`,
    );
  const grouped = (parsed.CORRAL_GPU_GROUPS ?? []).flat();
  const twice = grouped.find((index, i) => grouped.indexOf(index) !== i);
  if (twice !== undefined)
    throw new ConfigError("CORRAL_GPU_GROUPS", `GPU ${twice} is in more than one group (or twice in one)`);
  if (parsed.CORRAL_HEARTBEAT_MS < 100)
    throw new ConfigError("CORRAL_HEARTBEAT_MS", `expected at least 100 ms (got ${parsed.CORRAL_HEARTBEAT_MS})`);
  const workerId = parsed.CORRAL_WORKER_ID ?? safeHostname();
  return {
    ...commonConfig(parsed),
    nvidiaSmiPath: parsed.CORRAL_NVIDIA_SMI,
    nvidiaSmiTimeoutMs: Math.max(1, parsed.CORRAL_NVIDIA_SMI_TIMEOUT_MS),
    gpus: parsed.CORRAL_GPUS ?? null,
    gpuGroups: parsed.CORRAL_GPU_GROUPS ?? [],
    reserveGpus: reservationMap(parsed.CORRAL_RESERVE_GPUS ?? []),
    dynamicGroups: parsed.CORRAL_DYNAMIC_GROUPS,
    groupDrainMs: parsed.CORRAL_GROUP_DRAIN_MS,
    cpu: parsed.CORRAL_CPU,
    cpuSlots: parsed.CORRAL_CPU_SLOTS,
    threads: parsed.CORRAL_THREADS ?? null,
    reserveBytes: parsed.CORRAL_VRAM_RESERVE ?? null,
    swapAfterMs: parsed.CORRAL_SWAP_AFTER_MS,
    keepAliveMs: parsed.CORRAL_KEEP_ALIVE,
    drainMs: parsed.CORRAL_DRAIN_MS,
    jobLimits: {
      timeoutMs: parsed.CORRAL_JOB_TIMEOUT_MS,
      minTokensPerSecond: parsed.CORRAL_JOB_MIN_TOKENS_PER_SECOND,
      rateGraceMs: parsed.CORRAL_JOB_RATE_GRACE_MS,
    },
    prefixReuse: parsed.CORRAL_PREFIX_REUSE,
    stalledIntervalMs: parsed.CORRAL_STALLED_INTERVAL_MS,
    lockDurationMs: parsed.CORRAL_LOCK_DURATION_MS,
    heartbeatMs: parsed.CORRAL_HEARTBEAT_MS,
    oomCooldownMs: parsed.CORRAL_OOM_COOLDOWN_MS,
    metricsPort: parsed.CORRAL_WORKER_METRICS_PORT,
    metricsHost: parsed.CORRAL_WORKER_METRICS_HOST,
    workerId,
    tokenStreamTtlSeconds: Math.max(1, Math.ceil(parsed.CORRAL_TOKEN_STREAM_TTL / 1000)),
  };
}

/** Merges reservations of one GPU written in several parts (`0=a;0=b` → 0: a, b). */
function reservationMap(entries: readonly (readonly [number, readonly string[]])[]): Record<number, string[]> {
  const map: Record<number, string[]> = {};
  for (const [index, models] of entries) map[index] = [...new Set([...(map[index] ?? []), ...models])];
  return map;
}

/** The host name as a worker id: characters outside [A-Za-z0-9._-] become '-'. */
function safeHostname(): string {
  const name = hostname()
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 64);
  return name || "worker";
}

/**
 * The environment of a slot process: `base` (the supervisor's own environment; this file
 * is the one place that reads `process.env`) with `extra` on top.
 */
export function childEnvironment(extra: Record<string, string>, base: Env = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) if (value !== undefined) env[name] = value;
  return { ...env, ...extra };
}
