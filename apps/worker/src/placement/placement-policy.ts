/**
 * Where a model can run on one host: a pure function of the host's devices, their links
 * and the model's pins, tested without a GPU. `corral worker --plan` applies all the rules;
 * the claim applies rule 1 (through `SlotCatalog`); the supervisor's `DynamicGroups`
 * applies rules 1–6 to form a group when a model too big for one GPU waits (operators can
 * also start fixed groups, `CORRAL_GPU_GROUPS`).
 *
 * 1. Pins first. A device is a candidate only when the model's `placement` allows it
 *    (hosts, gpu_names, gpus, min_vram) and the device's GPU is not reserved for other
 *    models (`CORRAL_RESERVE_GPUS`). A slot that a model is not allowed on never claims it.
 * 2. One device before a group. A model that fits one candidate device's capacity
 *    (total − reserve) runs on one device; among those, the smallest capacity that fits
 *    (best fit: the big devices stay free for the big models), then the most free now.
 * 3. Groups are of whole GPUs on one host only: never MIG devices (CUDA shows a process
 *    one MIG device) nor the CPU. A group's capacity is Σ(total − reserve) of its GPUs and
 *    its free memory Σ(free − reserve): the reserve is kept on every GPU. The smallest
 *    group size whose capacity fits wins.
 * 4. Among groups of that size, the best link between its GPUs (its worst pair, from
 *    `nvidia-smi topo -m`): NVLink with more links, then PIX (one PCIe switch), PXB, PHB,
 *    NODE, SYS. Without a topology all links rank the same.
 * 5. Never strand a GPU a waiting model could use: among groups tied on rule 4, the group
 *    whose leftover GPUs can still run the most of the other waiting models (each on one
 *    leftover GPU, by rules 1–2); then the most free now; then the lowest indexes.
 * 6. No starvation of a group: see {@link yieldToGroup}. Once its group has been chosen for
 *    a waiting job `groupDrainMs` ago (`CORRAL_GROUP_DRAIN_MS`; the supervisor reads the
 *    lanes every second), the GPUs of the group stop claiming other models' jobs: their
 *    slots are stopped, and the jobs they run get `CORRAL_DRAIN_MS` to finish before they go
 *    back to their lanes. So the group forms within `groupDrainMs` + `CORRAL_DRAIN_MS` of
 *    being chosen, however many small jobs keep arriving, and the job starts after the
 *    group slot's start and its load. Before that, each of the group's slots leaves at its
 *    first idle moment.
 */
import { pinnedOut as sharedPinnedOut, type ModelPlacement } from "@corral/shared";
import { linkRank, type GpuTopology } from "../gpu/index.js";

/** One slot's device as placement sees it. */
export interface PlacementDevice {
  /** The slot name: `gpu0`, `gpu0-mig1`, `cpu0`. */
  slot: string;
  /** nvidia-smi index of the (parent) GPU; null for the CPU. */
  gpuIndex: number | null;
  /** nvidia-smi's GPU name (`NVIDIA RTX A5000`); `cpu` for the CPU. */
  name: string;
  mig: boolean;
  totalBytes: number;
  freeBytes: number;
  reserveBytes: number;
  /** A slot over a group of GPUs (CORRAL_GPU_GROUPS): each GPU, which pins and reservations check one by one. */
  members?: readonly { gpuIndex: number; name: string; totalBytes: number }[];
}

export interface PlacementHost {
  /** The worker id (`CORRAL_WORKER_ID`). */
  host: string;
  devices: readonly PlacementDevice[];
  topology: GpuTopology | null;
  /** GPU index → the only models it serves (`CORRAL_RESERVE_GPUS`). */
  reservations: ReadonlyMap<number, readonly string[]>;
}

export interface PlacementModel {
  id: string;
  /** What the model needs on a GPU (the catalog's `requirement_bytes`), bytes. */
  requirementBytes: number;
  placement?: ModelPlacement | null | undefined;
}

/** A way to run a model: one device, or a group of whole GPUs. */
export interface PlacementOption {
  /** Slot names: one, or the group's GPUs' slots. */
  slots: string[];
  /** GPU indexes (empty for the CPU). */
  gpus: number[];
  /** Σ(total − reserve), bytes. */
  capacityBytes: number;
  /** Σ(free − reserve) now, bytes (at least 0 per device). */
  freeBytes: number;
  fitsNow: boolean;
}

export type PlacementChoice =
  | { kind: "slot"; best: PlacementOption; others: PlacementOption[] }
  | { kind: "group"; best: PlacementOption; others: PlacementOption[] }
  | { kind: "none"; reason: string };

/** Why `device` may not run `model` on `host` by the model's pins (rule 1), or null when it may. */
export function pinnedOut(model: PlacementModel, host: string, device: PlacementDevice): string | null {
  if (device.gpuIndex === null) return sharedPinnedOut(model.placement, host, []);
  const gpus = device.members?.length
    ? device.members.map((member) => ({ index: member.gpuIndex, name: member.name, totalBytes: member.totalBytes }))
    : [{ index: device.gpuIndex, name: device.name, totalBytes: device.totalBytes }];
  return sharedPinnedOut(model.placement, host, gpus);
}

/** Why `model` may not run on `device` of `host`: its pins, or a reservation for other models (rule 1). */
export function notAllowed(model: PlacementModel, host: PlacementHost, device: PlacementDevice): string | null {
  const pinned = pinnedOut(model, host.host, device);
  if (pinned !== null) return pinned;
  if (device.gpuIndex === null) return null;
  const indexes = device.members?.length ? device.members.map((member) => member.gpuIndex) : [device.gpuIndex];
  for (const index of indexes) {
    const reservedFor = host.reservations.get(index);
    if (reservedFor !== undefined && !reservedFor.includes(model.id))
      return `GPU ${index} is reserved for ${reservedFor.join(", ")}`;
  }
  return null;
}

const capacity = (device: PlacementDevice) => Math.max(0, device.totalBytes - device.reserveBytes);
const freeNow = (device: PlacementDevice) => Math.max(0, device.freeBytes - device.reserveBytes);

function option(model: PlacementModel, devices: readonly PlacementDevice[]): PlacementOption {
  const capacityBytes = devices.reduce((sum, device) => sum + capacity(device), 0);
  const freeBytes = devices.reduce((sum, device) => sum + freeNow(device), 0);
  return {
    slots: devices.map((device) => device.slot),
    gpus: devices.flatMap((device) =>
      device.members?.length
        ? device.members.map((member) => member.gpuIndex)
        : device.gpuIndex === null
          ? []
          : [device.gpuIndex],
    ),
    capacityBytes,
    freeBytes,
    fitsNow: model.requirementBytes <= freeBytes,
  };
}

/** The worst link between any two GPUs of a group (rule 4); 0 without a topology. */
function groupLinkRank(gpus: readonly number[], topology: GpuTopology | null): number {
  if (topology === null) return 0;
  let worst = -Infinity;
  for (const a of gpus)
    for (const b of gpus) if (a !== b) worst = Math.max(worst, linkRank(topology.links.get(a)?.get(b)));
  return worst;
}

/** Every k-subset of `items`, in lexicographic order. */
function* subsets<T>(items: readonly T[], k: number, start = 0): Generator<T[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = start; i <= items.length - k; i++)
    for (const rest of subsets(items, k - 1, i + 1)) yield [items[i]!, ...rest];
}

/** Rule 2: the one-device options of `model`, best first. */
function singleOptions(model: PlacementModel, host: PlacementHost): PlacementOption[] {
  return host.devices
    .filter((device) => notAllowed(model, host, device) === null && capacity(device) >= model.requirementBytes)
    .sort((a, b) => capacity(a) - capacity(b) || freeNow(b) - freeNow(a) || (a.slot < b.slot ? -1 : 1))
    .map((device) => option(model, [device]));
}

/**
 * Where `model` runs on `host` (rules 1–5). `waiting` are the other models with waiting
 * jobs, for rule 5. Groups are searched up to `maxGroupSize` GPUs (all of them by default).
 */
export function placeModel(
  model: PlacementModel,
  host: PlacementHost,
  waiting: readonly PlacementModel[] = [],
  maxGroupSize = Infinity,
): PlacementChoice {
  const singles = singleOptions(model, host);
  if (singles.length > 0) return { kind: "slot", best: singles[0]!, others: singles.slice(1) };

  const allowed = host.devices.filter((device) => notAllowed(model, host, device) === null);
  if (allowed.length === 0) {
    const reasons = [...new Set(host.devices.map((device) => notAllowed(model, host, device)!))];
    return { kind: "none", reason: host.devices.length === 0 ? "no slots" : reasons.join("; ") };
  }
  const groupable = allowed.filter(
    (device) => !device.mig && device.gpuIndex !== null && (device.members?.length ?? 0) === 0,
  );
  const largest = Math.max(...allowed.map(capacity));
  const tooBig = `needs ${gib(model.requirementBytes)}; the largest allowed slot holds ${gib(largest)}`;
  const pool = groupable.reduce((sum, device) => sum + capacity(device), 0);
  if (groupable.length < 2 || pool < model.requirementBytes) {
    const why =
      groupable.length < 2
        ? "fewer than two whole GPUs to group (MIG devices and the CPU do not group)"
        : `all ${groupable.length} allowed whole GPUs together hold ${gib(pool)}`;
    return { kind: "none", reason: `${tooBig}; ${why}` };
  }

  for (let size = 2; size <= Math.min(groupable.length, maxGroupSize); size++) {
    const fitting = [...subsets(groupable, size)].filter(
      (group) => group.reduce((sum, device) => sum + capacity(device), 0) >= model.requirementBytes,
    );
    if (fitting.length === 0) continue;
    const others = waiting.filter((other) => other.id !== model.id);
    const ranked = fitting
      .map((group) => {
        const taken = new Set(group.map((device) => device.slot));
        const leftover: PlacementHost = { ...host, devices: host.devices.filter((device) => !taken.has(device.slot)) };
        return {
          group,
          link: groupLinkRank(
            group.map((device) => device.gpuIndex!),
            host.topology,
          ),
          servable: others.filter((other) => singleOptions(other, leftover).length > 0).length,
          option: option(model, group),
        };
      })
      .sort(
        (a, b) =>
          a.link - b.link ||
          b.servable - a.servable ||
          b.option.freeBytes - a.option.freeBytes ||
          compareIndexes(a.option.gpus, b.option.gpus),
      );
    return { kind: "group", best: ranked[0]!.option, others: ranked.slice(1).map((entry) => entry.option) };
  }
  return { kind: "none", reason: `${tooBig}; no group of at most ${maxGroupSize} GPUs holds it` };
}

function compareIndexes(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export interface YieldInput {
  /** When the group was chosen for the waiting job that needs it, ms; null: none waits. */
  groupJobWaitingSince: number | null;
  now: number;
  /** The bound of rule 6 (`groupDrainMs`). */
  groupDrainMs: number;
}

/**
 * Rule 6: whether the slots of the group chosen for a waiting job stop claiming other
 * models' jobs now (they finish those they run, within `CORRAL_DRAIN_MS`). True once the
 * group has been chosen `groupDrainMs` ago. `DynamicGroups` arms a timer for that moment.
 */
export function yieldToGroup(input: YieldInput): boolean {
  return input.groupJobWaitingSince !== null && input.now - input.groupJobWaitingSince >= input.groupDrainMs;
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
