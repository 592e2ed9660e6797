import type { GpuInfo } from "@corral/shared";
import type { Logger } from "pino";
import { execFileRunner, type CommandResult, type CommandRunner } from "./command-runner.js";
import { CommandTimeoutError, NvidiaSmiError, NvidiaSmiParseError } from "./errors.js";
import { parseCudaVersion, parseMigDevicesTable, type MigDeviceUsage } from "./parse-default-table.js";
import { parseListGpus, type ListedGpu } from "./parse-list-gpus.js";
import { parseTopology, type GpuTopology } from "./parse-topology.js";
import {
  DISCOVERY_QUERY_FIELDS,
  SAMPLE_QUERY_FIELDS,
  gpuFromRecord,
  readQueryGpuCsv,
  sampleFromGpu,
  type GpuSample,
} from "./parse-query-gpu-csv.js";

/** What a host offers: its NVIDIA GPUs, or the CPU when nvidia-smi is not installed. */
export interface GpuDiscovery {
  mode: "gpu" | "cpu";
  gpus: GpuInfo[];
  driverVersion: string | null;
  /** The highest CUDA version the driver supports, from plain `nvidia-smi`. */
  cudaVersion: string | null;
}

export interface NvidiaSmiOptions {
  /** The nvidia-smi program: a path, or a name looked up on PATH. */
  nvidiaSmiPath: string;
  /** Limit for each nvidia-smi call; it is killed past it. */
  timeoutMs: number;
  /** @defaultValue `execFileRunner` */
  runner?: CommandRunner;
  /** The child's whole environment. @defaultValue this process's environment */
  env?: NodeJS.ProcessEnv;
  /** @defaultValue no logging */
  logger?: Logger;
}

/** Fields an older driver may not know. When nvidia-smi rejects one, the query is retried without it. */
const OPTIONAL_FIELDS = new Set([
  "compute_cap",
  "mig.mode.current",
  "power.draw",
  "temperature.gpu",
  "utilization.gpu",
]);
const INVALID_FIELD = /Field "([^"]+)" is not a valid field to query/;

export function queryGpuArgs(fields: readonly string[]): string[] {
  return [`--query-gpu=${fields.join(",")}`, "--format=csv"];
}

/** Runs nvidia-smi once and returns its stdout, or throws `NvidiaSmiError` (reason `missing` when it does not exist). */
async function runNvidiaSmi(
  args: readonly string[],
  options: NvidiaSmiOptions,
): Promise<{ stdout: string; command: string }> {
  const runner = options.runner ?? execFileRunner;
  const command = [options.nvidiaSmiPath, ...args].join(" ");
  let result: CommandResult;
  try {
    result = await runner(options.nvidiaSmiPath, args, {
      timeoutMs: options.timeoutMs,
      ...(options.env === undefined ? {} : { env: options.env }),
    });
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "ENOENT") {
      throw new NvidiaSmiError("missing", {
        command,
        exitCode: null,
        output: "",
        detail: "was not found",
        cause: error,
      });
    }
    if (error instanceof CommandTimeoutError || code === "ETIMEDOUT") {
      const partial = error instanceof CommandTimeoutError ? `${error.stdout}\n${error.stderr}` : "";
      throw new NvidiaSmiError("timeout", {
        command,
        exitCode: null,
        output: partial,
        detail: `did not answer within ${options.timeoutMs} ms and was killed`,
        cause: error,
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new NvidiaSmiError("spawn", {
      command,
      exitCode: null,
      output: "",
      detail: `could not be run (${typeof code === "string" ? `${code}: ` : ""}${message})`,
      cause: error,
    });
  }
  if (result.exitCode !== 0) {
    throw new NvidiaSmiError("exit", {
      command,
      exitCode: result.exitCode,
      output: [result.stdout, result.stderr].filter((part) => part.trim() !== "").join("\n"),
      detail: `exited with status ${result.exitCode}`,
    });
  }
  return { stdout: result.stdout, command };
}

function unparsable(command: string, stdout: string, error: unknown): never {
  if (!(error instanceof NvidiaSmiParseError)) throw error;
  throw new NvidiaSmiError("unparsable", {
    command,
    exitCode: 0,
    output: stdout,
    detail: `printed output that does not parse (${error.message})`,
    cause: error,
  });
}

/**
 * Runs `--query-gpu` and parses it. When an older driver rejects an optional field
 * (`Field "compute_cap" is not a valid field to query.`), asks again without it.
 */
async function queryGpus(fields: readonly string[], options: NvidiaSmiOptions): Promise<GpuInfo[]> {
  let asked = [...fields];
  for (;;) {
    let ran: { stdout: string; command: string };
    try {
      ran = await runNvidiaSmi(queryGpuArgs(asked), options);
    } catch (error) {
      const rejected =
        error instanceof NvidiaSmiError && error.reason === "exit" ? INVALID_FIELD.exec(error.output)?.[1] : undefined;
      if (rejected !== undefined && OPTIONAL_FIELDS.has(rejected) && asked.includes(rejected)) {
        options.logger?.debug({ field: rejected }, "nvidia-smi does not know this field; asking without it");
        asked = asked.filter((field) => field !== rejected);
        continue;
      }
      throw error;
    }
    try {
      return readQueryGpuCsv(ran.stdout).map((record, position) => gpuFromRecord(record, position));
    } catch (error) {
      unparsable(ran.command, ran.stdout, error);
    }
  }
}

/** Attaches `nvidia-smi -L`'s MIG devices to their GPUs (by UUID, else by index) and takes exact sizes from the default table. */
function attachMigInstances(gpus: GpuInfo[], listText: string, listCommand: string, tableText: string): GpuInfo[] {
  let listed: ListedGpu[];
  try {
    listed = parseListGpus(listText);
  } catch (error) {
    unparsable(listCommand, listText, error);
  }
  const exactSizes = parseMigDevicesTable(tableText);
  return gpus.map((gpu) => {
    const entry =
      listed.find((candidate) => gpu.uuid !== "" && candidate.uuid === gpu.uuid) ??
      listed.find((candidate) => candidate.index === gpu.index);
    if (entry === undefined || entry.mig_instances.length === 0) return gpu;
    return {
      ...gpu,
      mig_instances: entry.mig_instances.map((instance) => {
        const exact = exactSizes.find(
          (row) => row.gpu_index === gpu.index && row.device_index === instance.device_index,
        );
        return exact === undefined
          ? instance
          : {
              ...instance,
              memory_total_bytes: exact.memory_total_bytes,
              memory_used_bytes: exact.memory_used_bytes,
              gpu_instance_id: exact.gpu_instance_id,
            };
      }),
    };
  });
}

/**
 * Finds the NVIDIA GPUs with nvidia-smi: `--query-gpu` for each GPU's facts, `-L` for MIG
 * devices, and the plain table for the CUDA version. Without nvidia-smi (ENOENT) the
 * answer is CPU mode, logged once at info. Throws `NvidiaSmiError` when nvidia-smi exits
 * non-zero, runs past `timeoutMs`, or prints something that does not parse; callers
 * catch it and decide.
 */
export async function discoverGpus(options: NvidiaSmiOptions): Promise<GpuDiscovery> {
  const logger = options.logger?.child({ component: "gpu-discovery" });
  const scoped = { ...options, ...(logger === undefined ? {} : { logger }) };
  let gpus: GpuInfo[];
  try {
    gpus = await queryGpus(DISCOVERY_QUERY_FIELDS, scoped);
  } catch (error) {
    if (error instanceof NvidiaSmiError && error.reason === "missing") {
      logger?.info({ nvidiaSmiPath: options.nvidiaSmiPath }, "nvidia-smi not found; running in CPU mode");
      return { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null };
    }
    throw error;
  }
  if (gpus.length === 0) {
    logger?.warn({ nvidiaSmiPath: options.nvidiaSmiPath }, "nvidia-smi lists no GPUs; running in CPU mode");
    return { mode: "cpu", gpus: [], driverVersion: null, cudaVersion: null };
  }
  const [list, table] = await Promise.all([runNvidiaSmi(["-L"], scoped), runNvidiaSmi([], scoped)]);
  const withMig = attachMigInstances(gpus, list.stdout, list.command, table.stdout);
  const discovery: GpuDiscovery = {
    mode: "gpu",
    gpus: withMig,
    driverVersion: withMig.find((gpu) => gpu.driver_version !== null)?.driver_version ?? null,
    cudaVersion: parseCudaVersion(table.stdout),
  };
  logger?.debug(
    { gpus: withMig.map((gpu) => `${gpu.index}: ${gpu.name}`), cudaVersion: discovery.cudaVersion },
    "discovered GPUs",
  );
  return discovery;
}

/**
 * The cheap refresh the worker runs every few seconds: one `--query-gpu` call for live
 * memory, utilization, temperature and power. Throws `NvidiaSmiError` on any failure,
 * including a missing nvidia-smi (reason `missing`).
 */
export async function sampleGpus(options: NvidiaSmiOptions): Promise<GpuSample[]> {
  return (await queryGpus(SAMPLE_QUERY_FIELDS, options)).map(sampleFromGpu);
}

/**
 * Live memory of every MIG device, from the "MIG devices" section of plain `nvidia-smi`
 * (`--query-gpu` reports only the physical GPU). Empty when no GPU has MIG devices.
 * Throws `NvidiaSmiError` on any failure.
 */
export async function sampleMigDevices(options: NvidiaSmiOptions): Promise<MigDeviceUsage[]> {
  const { stdout } = await runNvidiaSmi([], options);
  return parseMigDevicesTable(stdout);
}

/**
 * The links between GPUs from `nvidia-smi topo -m`, or null when it fails or prints what
 * does not parse (logged at debug): topology is a preference for placement, never a reason
 * not to start.
 */
export async function discoverTopology(options: NvidiaSmiOptions): Promise<GpuTopology | null> {
  try {
    return parseTopology((await runNvidiaSmi(["topo", "-m"], options)).stdout);
  } catch (error) {
    options.logger?.debug({ err: error }, "no GPU topology from nvidia-smi topo -m");
    return null;
  }
}

/** Copies fresh samples onto discovered GPUs, matched by UUID (else index). GPUs without a sample keep their values. */
export function applyGpuSamples(gpus: readonly GpuInfo[], samples: readonly GpuSample[]): GpuInfo[] {
  return gpus.map((gpu) => {
    const sample =
      samples.find((candidate) => gpu.uuid !== "" && candidate.uuid === gpu.uuid) ??
      samples.find((candidate) => (gpu.uuid === "" || candidate.uuid === "") && candidate.index === gpu.index);
    if (sample === undefined) return gpu;
    return { ...gpu, ...sample, index: gpu.index, uuid: gpu.uuid };
  });
}
