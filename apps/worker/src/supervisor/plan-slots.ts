import { ConfigError } from "@corral/shared";
import type { WorkerConfig } from "../env.js";
import { migDeviceAsGpu, type GpuDiscovery } from "../gpu/index.js";
import type { SlotSpec } from "../slot/types.js";

/**
 * The slots a worker runs: one per GPU (those named by CORRAL_GPUS, else all) and, on a
 * GPU with MIG enabled, one per MIG device instead (addressed by its `MIG-…` UUID, with its
 * own memory; a MIG GPU without devices gets no slot, since CUDA cannot use it), or
 * CORRAL_CPU_SLOTS CPU slots when CORRAL_CPU is set or the host has no GPU. Threads per
 * slot: CORRAL_THREADS, else the cores divided by the slots (at least 1) as the most a
 * slot tries, each model on the CPU then keeping the faster of 1 and that (calibrateThreads).
 * Throws a ConfigError when CORRAL_GPUS names a GPU that does not exist.
 */
export function planSlots(
  config: Pick<WorkerConfig, "workerId" | "gpus" | "cpu" | "cpuSlots" | "threads">,
  discovery: GpuDiscovery,
  cores: number,
): SlotSpec[] {
  const calibrateThreads = config.threads === null;
  const threadsFor = (slots: number) => config.threads ?? Math.max(1, Math.floor(cores / Math.max(1, slots)));

  if (config.cpu || discovery.mode === "cpu" || discovery.gpus.length === 0) {
    const threads = threadsFor(config.cpuSlots);
    return Array.from({ length: config.cpuSlots }, (_, i) => ({
      id: `${config.workerId}:cpu${i}`,
      name: `cpu${i}`,
      kind: "cpu" as const,
      gpuIndex: null,
      gpus: [],
      devices: [],
      cudaVersion: null,
      threads,
      calibrateThreads,
    }));
  }

  let gpus = discovery.gpus;
  if (config.gpus !== null) {
    const known = new Set(gpus.map((gpu) => gpu.index));
    const missing = config.gpus.filter((index) => !known.has(index));
    if (missing.length > 0)
      throw new ConfigError(
        "CORRAL_GPUS",
        `no GPU with index ${missing.join(", ")}; this host has ${[...known].sort((a, b) => a - b).join(", ")}`,
      );
    const wanted = new Set(config.gpus);
    gpus = gpus.filter((gpu) => wanted.has(gpu.index));
  }
  const units = gpus.flatMap((gpu) =>
    gpu.mig_mode === "enabled"
      ? gpu.mig_instances.map((instance) => ({
          name: `gpu${gpu.index}-mig${instance.device_index}`,
          gpu: migDeviceAsGpu(gpu, instance),
          device: instance.uuid,
        }))
      : [{ name: `gpu${gpu.index}`, gpu, device: String(gpu.index) }],
  );
  const threads = threadsFor(units.length);
  return units.map(({ name, gpu, device }) => ({
    id: `${config.workerId}:${name}`,
    name,
    kind: "gpu" as const,
    gpuIndex: gpu.index,
    gpus: [gpu],
    devices: [device],
    cudaVersion: discovery.cudaVersion,
    threads,
    calibrateThreads,
  }));
}
