import { defaultReserveBytes, requirementOn, type CatalogModel } from "@corral/shared";
import type { WorkerConfig } from "../env.js";
import type { GpuDiscovery, GpuTopology } from "../gpu/index.js";
import type { SlotSpec } from "../slot/types.js";
import { groupableSlots, planSlots } from "../supervisor/plan-slots.js";
import { placeModel, type PlacementDevice, type PlacementHost, type PlacementOption } from "./placement-policy.js";

/** One slot the worker would start. */
export interface PlannedSlot {
  id: string;
  name: string;
  kind: "gpu" | "cpu";
  /** What the slot gets in `CUDA_VISIBLE_DEVICES` (empty on the CPU). */
  devices: string[];
  /** The GPU's (or MIG device's) name; `cpu` for CPU slots. */
  device_name: string;
  total_bytes: number;
  free_bytes: number;
  reserve_bytes: number;
  /** Models this slot's GPU is reserved for (`CORRAL_RESERVE_GPUS`); null: any. */
  reserved_for: string[] | null;
}

/** Where one catalog model can run on this worker. */
export interface PlannedModel {
  id: string;
  file: string;
  /** What it needs on one of these slots (GPU: the catalog's requirement; CPU: its RAM estimate). */
  requirement_bytes: number;
  placement: CatalogModel["placement"];
  /** `slot`: one slot; `group`: a group of GPUs (split by llama.cpp); `none`: nowhere here. */
  runs_on: "slot" | "group" | "none";
  /** The choice of the placement policy, then the other ways, best first (empty for `none`). */
  options: PlannedOption[];
  /** Why nothing here can run it (`none` only). */
  reason: string | null;
}

export interface PlannedOption {
  slots: string[];
  gpus: number[];
  /** Σ(total − reserve) of its devices. */
  capacity_bytes: number;
  /** Σ(free − reserve) now. */
  free_bytes: number;
  /** Whether it fits what is free now (else it fits once the devices are empty). */
  fits_now: boolean;
}

export interface WorkerPlan {
  worker: string;
  mode: "gpu" | "cpu";
  driver_version: string | null;
  cuda_version: string | null;
  /** Whether the GPU links came from `nvidia-smi topo -m` (else all links rank the same). */
  topology: boolean;
  /**
   * Whether the worker forms the `group` options below on demand (CORRAL_DYNAMIC_GROUPS and
   * two or more whole GPUs of their own); else a group runs only as CORRAL_GPU_GROUPS.
   */
  dynamic_groups: boolean;
  /** The most a group's GPUs go on taking other jobs once chosen, then their running jobs' drain (ms). */
  group_drain_ms: number;
  drain_ms: number;
  slots: PlannedSlot[];
  models: PlannedModel[];
}

export interface WorkerPlanInput {
  config: Pick<
    WorkerConfig,
    "workerId" | "gpus" | "cpu" | "cpuSlots" | "threads" | "reserveBytes" | "reserveGpus" | "gpuGroups"
  > &
    Partial<Pick<WorkerConfig, "dynamicGroups" | "groupDrainMs" | "drainMs">>;
  discovery: GpuDiscovery;
  topology: GpuTopology | null;
  /** The catalog (from the models folder, as the scheduler builds it). */
  models: readonly CatalogModel[];
  cores: number;
  /** RAM, for CPU slots. */
  ram: { totalBytes: number; freeBytes: number };
}

/** The devices of the slots as placement sees them. */
export function placementDevices(
  slots: readonly SlotSpec[],
  reserveBytes: number | null,
  ram: { totalBytes: number; freeBytes: number },
): PlacementDevice[] {
  return slots.map((slot) => {
    const gpu = slot.gpus[0];
    if (slot.gpus.length > 1) {
      // A group slot: its GPUs summed, the reserve kept on each.
      const totals = slot.gpus.map((member) => member.memory_total_bytes ?? 0);
      return {
        slot: slot.name,
        gpuIndex: slot.gpuIndex,
        name: slot.gpus.map((member) => member.name).join(" + "),
        mig: false,
        totalBytes: totals.reduce((sum, total) => sum + total, 0),
        freeBytes: slot.gpus.reduce((sum, member) => sum + (member.memory_free_bytes ?? 0), 0),
        reserveBytes: totals.reduce((sum, total) => sum + (reserveBytes ?? defaultReserveBytes(total)), 0),
        members: slot.gpus.map((member, i) => ({ gpuIndex: member.index, name: member.name, totalBytes: totals[i]! })),
      };
    }
    const totalBytes = gpu === undefined ? ram.totalBytes : (gpu.memory_total_bytes ?? 0);
    const freeBytes = gpu === undefined ? ram.freeBytes : (gpu.memory_free_bytes ?? 0);
    return {
      slot: slot.name,
      gpuIndex: slot.gpuIndex,
      name: gpu?.name ?? "cpu",
      mig: gpu !== undefined && gpu.uuid.startsWith("MIG-"),
      totalBytes,
      freeBytes,
      reserveBytes: reserveBytes ?? defaultReserveBytes(totalBytes),
    };
  });
}

/** `CORRAL_RESERVE_GPUS` as placement takes it. */
export function reservationsOf(config: Pick<WorkerConfig, "reserveGpus">): Map<number, string[]> {
  return new Map(Object.entries(config.reserveGpus).map(([index, models]) => [Number(index), models]));
}

/**
 * What `corral worker --plan` prints: the slots this worker would start (the same
 * `planSlots` the supervisor runs) and, for each catalog model, where the placement policy
 * would run it, or why nothing here can. Starts nothing.
 */
export function buildWorkerPlan(input: WorkerPlanInput): WorkerPlan {
  const { config, discovery } = input;
  const specs = planSlots(config, discovery, input.cores);
  const kind = specs[0]?.kind ?? "cpu";
  const reservations = reservationsOf(config);
  const host: PlacementHost = {
    host: config.workerId,
    devices: placementDevices(specs, config.reserveBytes, input.ram),
    topology: kind === "gpu" ? input.topology : null,
    reservations,
  };
  const asPlacement = (model: CatalogModel) => ({
    id: model.id,
    requirementBytes: requirementOn(kind, model),
    placement: model.placement ?? null,
  });
  const all = input.models.map(asPlacement);
  return {
    worker: config.workerId,
    mode: kind,
    driver_version: discovery.driverVersion,
    cuda_version: discovery.cudaVersion,
    topology: host.topology !== null,
    dynamic_groups: (config.dynamicGroups ?? true) && groupableSlots(specs).length >= 2,
    group_drain_ms: config.groupDrainMs ?? 60_000,
    drain_ms: config.drainMs ?? 30_000,
    slots: specs.map((spec, i) => {
      const device = host.devices[i]!;
      return {
        id: spec.id,
        name: spec.name,
        kind: spec.kind,
        devices: spec.devices,
        device_name: device.name,
        total_bytes: device.totalBytes,
        free_bytes: device.freeBytes,
        reserve_bytes: device.reserveBytes,
        reserved_for: reservedFor(spec, reservations),
      };
    }),
    models: input.models.map((model, i) => {
      const choice = placeModel(all[i]!, host, all);
      const base = {
        id: model.id,
        file: model.file,
        requirement_bytes: all[i]!.requirementBytes,
        placement: model.placement ?? null,
      };
      if (choice.kind === "none") return { ...base, runs_on: "none" as const, options: [], reason: choice.reason };
      return { ...base, runs_on: choice.kind, options: [choice.best, ...choice.others].map(planned), reason: null };
    }),
  };
}

/** The models the slot's GPUs are reserved for (all of a group's), or null when none is. */
function reservedFor(spec: SlotSpec, reservations: ReadonlyMap<number, string[]>): string[] | null {
  const models = [...new Set(spec.gpus.flatMap((gpu) => reservations.get(gpu.index) ?? []))];
  return models.length === 0 ? null : models;
}

const planned = (option: PlacementOption): PlannedOption => ({
  slots: option.slots,
  gpus: option.gpus,
  capacity_bytes: option.capacityBytes,
  free_bytes: option.freeBytes,
  fits_now: option.fitsNow,
});

const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);
const seconds = (ms: number) => String(Math.round(ms / 100) / 10);

/** The plan as text: a slot table, then one block per model. */
export function formatWorkerPlan(plan: WorkerPlan): string {
  const lines = [
    `worker ${plan.worker}: ${plan.slots.length} ${plan.mode.toUpperCase()} slot${plan.slots.length === 1 ? "" : "s"}` +
      (plan.mode === "gpu"
        ? ` (driver ${plan.driver_version ?? "unknown"}, CUDA ${plan.cuda_version ?? "unknown"}, topology ${plan.topology ? "from nvidia-smi topo -m" : "unknown"})`
        : ""),
    "",
  ];
  const rows = [["SLOT", "DEVICES", "DEVICE", "TOTAL GiB", "FREE GiB", "RESERVE GiB", "RESERVED FOR"]];
  for (const slot of plan.slots)
    rows.push([
      slot.id,
      slot.devices.join(",") || "-",
      slot.device_name,
      gib(slot.total_bytes),
      gib(slot.free_bytes),
      gib(slot.reserve_bytes),
      slot.reserved_for?.join(", ") ?? "-",
    ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows)
    lines.push(
      row
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    );
  lines.push("");
  if (plan.models.length === 0) lines.push("no models in the catalog");
  for (const model of plan.models) {
    lines.push(`${model.id} (${model.file}): needs ${gib(model.requirement_bytes)} GiB`);
    if (model.runs_on === "none") {
      lines.push(`  cannot run here: ${model.reason}`);
      continue;
    }
    if (model.runs_on === "group")
      lines.push(
        plan.dynamic_groups
          ? `  formed when a job for it waits: its GPUs' slots leave when idle, at the latest ${seconds(plan.group_drain_ms)} s after (then their jobs get ${seconds(plan.drain_ms)} s)`
          : "  dynamic groups are off here: start the group with CORRAL_GPU_GROUPS",
      );
    model.options.forEach((option, i) => {
      const what = model.runs_on === "group" ? `group of ${option.slots.length}` : "slot";
      const now = option.fits_now ? "fits now" : "fits when empty";
      lines.push(
        `  ${i === 0 ? "->" : "  "} ${what} ${option.slots.join("+")}: ${gib(option.capacity_bytes)} GiB usable, ${gib(option.free_bytes)} GiB free now (${now})`,
      );
    });
  }
  return lines.join("\n");
}
