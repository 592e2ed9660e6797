import { ConfigError } from "@corral/shared";
import type { WorkerConfig } from "../env.js";
import { migDeviceAsGpu, type GpuDiscovery } from "../gpu/index.js";
import type { SlotSpec } from "../slot/types.js";

/**
 * The slots a worker runs: one per GPU (those named by CORRAL_GPUS, else all) and, on a
 * GPU with MIG enabled, one per MIG device instead (addressed by its `MIG-…` UUID, with its
 * own memory; a MIG GPU without devices gets no slot, since CUDA cannot use it), one slot
 * per CORRAL_GPU_GROUPS group over its whole GPUs (named `gpu0+1`, in place of their own
 * slots; a group of GPUs CORRAL_GPUS leaves out is skipped), or
 * CORRAL_CPU_SLOTS CPU slots when CORRAL_CPU is set or the host has no GPU. Threads per
 * slot: CORRAL_THREADS, else the cores divided by the slots (at least 1) as the most a
 * slot tries, each model on the CPU then keeping the faster of 1 and that (calibrateThreads).
 * Throws a ConfigError when CORRAL_GPUS or CORRAL_GPU_GROUPS names a GPU that does not
 * exist, or a group holds a MIG GPU.
 */
export function planSlots(
  config: Pick<WorkerConfig, "workerId" | "gpus" | "cpu" | "cpuSlots" | "threads"> &
    Partial<Pick<WorkerConfig, "gpuGroups">>,
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
  // CORRAL_GPU_GROUPS: each group is one slot over whole GPUs; its GPUs get no slot of their own.
  const groups = (config.gpuGroups ?? []).filter((group) =>
    group.every((index) => gpus.some((gpu) => gpu.index === index)),
  );
  for (const group of config.gpuGroups ?? []) {
    const unknown = group.filter((index) => !discovery.gpus.some((gpu) => gpu.index === index));
    if (unknown.length > 0)
      throw new ConfigError(
        "CORRAL_GPU_GROUPS",
        `no GPU with index ${unknown.join(", ")} for the group ${group.join("+")}`,
      );
    const mig = group.filter((index) => discovery.gpus.find((gpu) => gpu.index === index)?.mig_mode === "enabled");
    if (mig.length > 0)
      throw new ConfigError(
        "CORRAL_GPU_GROUPS",
        `GPU ${mig.join(", ")} has MIG enabled; MIG devices cannot be grouped`,
      );
  }
  const grouped = new Set(groups.flat());
  const groupUnits = groups.map((group) => {
    const members = group.map((index) => gpus.find((gpu) => gpu.index === index)!);
    return { name: `gpu${group.join("+")}`, members, devices: group.map(String) };
  });
  const units = gpus
    .filter((gpu) => !grouped.has(gpu.index))
    .flatMap((gpu) =>
      gpu.mig_mode === "enabled"
        ? gpu.mig_instances.map((instance) => ({
            name: `gpu${gpu.index}-mig${instance.device_index}`,
            members: [migDeviceAsGpu(gpu, instance)],
            devices: [instance.uuid],
          }))
        : [{ name: `gpu${gpu.index}`, members: [gpu], devices: [String(gpu.index)] }],
    );
  const all = [...units, ...groupUnits].sort((a, b) => a.members[0]!.index - b.members[0]!.index);
  const threads = threadsFor(all.length);
  return all.map(({ name, members, devices }) => ({
    id: `${config.workerId}:${name}`,
    name,
    kind: "gpu" as const,
    // A group's first GPU: CORRAL_SLOT_GPU and the job records' `gpu` name it.
    gpuIndex: members[0]!.index,
    gpus: members,
    devices,
    cudaVersion: discovery.cudaVersion,
    threads,
    calibrateThreads,
  }));
}

/** The slots of whole GPUs of their own (not MIG devices, not static groups): those a dynamic group may take. */
export function groupableSlots(slots: readonly SlotSpec[]): SlotSpec[] {
  return slots.filter(
    (spec) => spec.kind === "gpu" && spec.gpus.length === 1 && !spec.gpus[0]!.uuid.startsWith("MIG-"),
  );
}
