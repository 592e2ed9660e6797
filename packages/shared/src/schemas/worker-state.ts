import { z } from "zod";

export const MigInstance = z.object({
  uuid: z.string(),
  profile: z.string(),
  device_index: z.number().int(),
  memory_total_bytes: z.number().nullable(),
  /** Memory in use on the instance, from the default table's "MIG devices" section when it has one. */
  memory_used_bytes: z.number().nullable().optional(),
  /**
   * The GPU instance (GI ID) the device belongs to, from the same table. Compute instances
   * of one GPU instance (`1c.3g.71gb` and `2c.3g.71gb`) share its memory.
   */
  gpu_instance_id: z.number().int().nullable().optional(),
});
export type MigInstance = z.infer<typeof MigInstance>;

/** One NVIDIA GPU as discovered through nvidia-smi. Unknown values are null. */
export const GpuInfo = z.object({
  index: z.number().int(),
  uuid: z.string(),
  name: z.string(),
  memory_total_bytes: z.number().nullable(),
  memory_used_bytes: z.number().nullable(),
  memory_free_bytes: z.number().nullable(),
  utilization_ratio: z.number().nullable(),
  temperature_celsius: z.number().nullable(),
  power_watts: z.number().nullable(),
  driver_version: z.string().nullable(),
  compute_capability: z.string().nullable(),
  mig_mode: z.enum(["enabled", "disabled", "unsupported"]),
  mig_instances: z.array(MigInstance),
});
export type GpuInfo = z.infer<typeof GpuInfo>;

export const HostInfo = z.object({
  hostname: z.string(),
  cpu_model: z.string(),
  cpu_cores: z.number().int(),
  memory_total_bytes: z.number(),
  memory_free_bytes: z.number(),
  os: z.string(),
});
export type HostInfo = z.infer<typeof HostInfo>;

export const LoadedModel = z.object({
  model: z.string(),
  requirement_bytes: z.number(),
  sequences: z.number().int(),
  busy_sequences: z.number().int(),
  loaded_at: z.number(),
  last_used_at: z.number(),
});
export type LoadedModel = z.infer<typeof LoadedModel>;

/** What each worker slot writes to Redis every few seconds (with a TTL). */
export const WorkerState = z.object({
  id: z.string(),
  host: z.string(),
  slot: z.string(),
  pid: z.number().int(),
  version: z.string(),
  mode: z.enum(["gpu", "cpu"]),
  gpus: z.array(GpuInfo),
  cuda_version: z.string().nullable(),
  host_info: HostInfo.nullable(),
  budget_total_bytes: z.number(),
  budget_free_bytes: z.number(),
  /**
   * With dynamic groups: Σ(total − reserve) of the whole GPUs of this slot's host that may
   * form a group with this slot's GPU, the most a model split across them could use. Absent
   * when the slot's GPU never groups (MIG, a static group, dynamic groups off, one GPU).
   */
  group_budget_total_bytes: z.number().optional(),
  loaded_models: z.array(LoadedModel),
  active_jobs: z.array(z.string()),
  state: z.enum(["starting", "idle", "busy", "draining"]),
  started_at: z.number(),
  updated_at: z.number(),
});
export type WorkerState = z.infer<typeof WorkerState>;
