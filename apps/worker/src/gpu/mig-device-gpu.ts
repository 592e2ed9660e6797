import type { GpuInfo, MigInstance } from "@corral/shared";
import type { MigDeviceUsage } from "./parse-default-table.js";

/** Whether `gpu` stands for one MIG device (as {@link migDeviceAsGpu} makes it) rather than a whole GPU. */
export const isMigDevice = (gpu: GpuInfo): boolean => gpu.uuid.startsWith("MIG-");

/**
 * One MIG device as the GPU a slot owns: the parent's index (so `CORRAL_GPUS` and the
 * metrics' `gpu` label still name the physical GPU), the device's `MIG-…` UUID (what goes in
 * `CUDA_VISIBLE_DEVICES`), and the device's own memory: its total from the default table
 * (else the profile name), used from the table when known, free = total − used (MIG reports
 * no separate reserve). Utilization is unknown on MIG (`[N/A]`); temperature and power are
 * the whole GPU's.
 */
export function migDeviceAsGpu(parent: GpuInfo, instance: MigInstance): GpuInfo {
  const total = instance.memory_total_bytes;
  const used = instance.memory_used_bytes ?? null;
  return {
    ...parent,
    uuid: instance.uuid,
    name: `${parent.name} MIG ${instance.profile}`,
    memory_total_bytes: total,
    memory_used_bytes: used,
    memory_free_bytes: total === null ? null : Math.max(0, total - (used ?? 0)),
    utilization_ratio: null,
    mig_mode: "enabled",
    mig_instances: [instance],
  };
}

/**
 * Copies the live "MIG devices" rows onto MIG-device GPUs, matched by parent index and
 * device index. Whole GPUs, and MIG devices without a row, are returned unchanged.
 */
export function applyMigSamples(gpus: readonly GpuInfo[], rows: readonly MigDeviceUsage[]): GpuInfo[] {
  return gpus.map((gpu) => {
    const instance = gpu.mig_instances[0];
    if (!isMigDevice(gpu) || instance === undefined) return gpu;
    const row = rows.find(
      (candidate) => candidate.gpu_index === gpu.index && candidate.device_index === instance.device_index,
    );
    if (row === undefined) return gpu;
    return {
      ...gpu,
      memory_total_bytes: row.memory_total_bytes,
      memory_used_bytes: row.memory_used_bytes,
      memory_free_bytes: Math.max(0, row.memory_total_bytes - row.memory_used_bytes),
      mig_instances: [
        {
          ...instance,
          memory_total_bytes: row.memory_total_bytes,
          memory_used_bytes: row.memory_used_bytes,
          gpu_instance_id: row.gpu_instance_id,
        },
      ],
    };
  });
}
