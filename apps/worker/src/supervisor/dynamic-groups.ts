import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { NOTHING_HELD, type CatalogModel, type RedisKeys } from "@corral/shared";
import { CatalogCache } from "../claim/catalog-cache.js";
import { LaneReader } from "../claim/lane-reader.js";
import type { GpuTopology } from "../gpu/index.js";
import {
  notAllowed,
  placeModel,
  yieldToGroup,
  type PlacementHost,
  type PlacementModel,
  type PlacementOption,
} from "../placement/placement-policy.js";
import { placementDevices } from "../placement/worker-plan.js";
import { groupableSlots } from "./plan-slots.js";
import type { SlotSpec } from "../slot/types.js";

/** What the groups ask of the supervisor's slot processes. */
export interface GroupControl {
  /** Ask the slot to exit at its next idle moment (it is not restarted). */
  retire(slot: string): void;
  /** Stop the slot now: it claims nothing more, and its running jobs get CORRAL_DRAIN_MS. */
  stop(slot: string): void;
  /** Start a slot process for `spec` (a group slot, or a GPU's own slot again). */
  start(spec: SlotSpec): void;
}

export interface DynamicGroupsOptions {
  /** The supervisor's connection: the catalog and the lanes with jobs are read on it. */
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /** The worker id, for pins. */
  host: string;
  reservations: ReadonlyMap<number, readonly string[]>;
  /** `nvidia-smi topo -m`, for placement rule 4; null: every link ranks the same. */
  topology: GpuTopology | null;
  /** Every slot the worker starts with (one per GPU, MIG device or static group). */
  slots: readonly SlotSpec[];
  /** CORRAL_VRAM_RESERVE (null: the default per GPU). */
  reserveBytes: number | null;
  /** The bound (`CORRAL_GROUP_DRAIN_MS`): after this, a chosen group's slots are stopped. */
  groupDrainMs: number;
  /** A group slot exits after this long without a job (`CORRAL_KEEP_ALIVE`). */
  keepAliveMs: number;
  control: GroupControl;
  /** How often the lanes are read. @defaultValue 1000 */
  checkMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** One group: chosen and draining its GPUs' slots, or running as one slot. */
interface Group {
  spec: SlotSpec;
  /** The GPUs' own slots (names) it takes the place of. */
  members: string[];
  model: string;
  /** `abandoned`: its model stopped waiting while it drained; its members come back as they leave. */
  phase: "draining" | "running" | "abandoned";
  chosenAt: number;
  /** Members whose process has exited. */
  gone: Set<string>;
  bound: NodeJS.Timeout | null;
}

/** Event payloads (the events carry the time they happened, ms). */
export interface GroupEvent {
  group: string;
  model: string;
  members: string[];
  at: number;
}

/**
 * Dynamic groups: the supervisor's half of placement rules 3–6. The worker starts with one
 * slot per GPU. Every `checkMs` this reads the lanes with jobs ready; for a model that no
 * slot of the host holds alone but a group of its whole GPUs does, and that no group here
 * serves yet, it asks {@link placeModel} for the group (smallest that fits, best link,
 * strands the fewest GPUs the other waiting models could use) among the GPUs whose own slots
 * are up, and:
 * 1. asks those slots to retire: each exits at its next idle moment (finishing its jobs);
 * 2. after `groupDrainMs` (the bound), stops the ones still up: they claim no other
 *    model's job from then on, and their running jobs get CORRAL_DRAIN_MS, then go back to
 *    their lanes. So however many small jobs keep coming, the group forms within
 *    `groupDrainMs` + CORRAL_DRAIN_MS of being chosen;
 * 3. once every member slot has exited, starts one slot over the group
 *    (`CUDA_VISIBLE_DEVICES=0,1`) that claims only the models too big for one GPU;
 * 4. when that slot has run no job for keep-alive it exits, and the GPUs' own slots start
 *    again.
 *
 * A group still draining when its model no longer waits (a group on another host took the
 * job) is given up: its GPUs' slots start again as they leave. (A cancelled job stays
 * listed for fair claim until a slot releases it, so its group forms, finds nothing, and
 * splits after keep-alive.)
 *
 * Events: `draining`, `bound` (the members still up were stopped), `formed`, `split`,
 * `abandoned`, each with a {@link GroupEvent}.
 */
export class DynamicGroups extends EventEmitter {
  readonly #o: Required<DynamicGroupsOptions>;
  readonly #log: Logger;
  readonly #catalog: CatalogCache;
  readonly #lanes: LaneReader;
  /** The whole GPUs' own slots, by name: the slots that may join a group. */
  readonly #singles: Map<string, SlotSpec>;
  /** The most one slot of this host holds: a group slot claims only models above it. */
  readonly #largestSlotBytes: number;
  readonly #groups = new Map<string, Group>();
  readonly #reported = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #closed = false;

  constructor(options: DynamicGroupsOptions) {
    super();
    this.#o = { checkMs: 1000, now: Date.now, ...options };
    this.#log = options.logger.child({ component: "groups" });
    this.#catalog = new CatalogCache({
      redis: options.redis,
      keys: options.keys,
      refreshMs: this.#o.checkMs,
      logger: this.#log,
    });
    this.#lanes = new LaneReader(options.redis, options.keys);
    this.#singles = new Map(groupableSlots(options.slots).map((spec) => [spec.name, spec]));
    this.#largestSlotBytes = Math.max(
      0,
      ...placementDevices(options.slots, options.reserveBytes, { totalBytes: 0, freeBytes: 0 }).map((device) =>
        Math.max(0, device.totalBytes - device.reserveBytes),
      ),
    );
  }

  /** Whether this host has two whole GPUs of their own to group. */
  get possible(): boolean {
    return this.#singles.size >= 2;
  }

  /** Reads the lanes every `checkMs` (a failed read is logged and tried again next time). */
  start(): void {
    if (!this.possible || this.#timer || this.#closed) return;
    this.#timer = setInterval(() => {
      this.#ticking ??= this.check()
        .catch((error: unknown) => this.#log.warn({ err: error }, "reading the lanes for groups failed"))
        .finally(() => {
          this.#ticking = null;
        });
    }, this.#o.checkMs);
  }

  /** One look at the lanes: chooses and starts draining a group for each model that needs one. */
  async check(): Promise<void> {
    if (this.#closed) return;
    const now = this.#o.now();
    await this.#catalog.refresh(now);
    let withJobs = await this.#lanes.withJobs();
    // No slot of one GPU reads the lane of a model too big for it, so nothing else keeps
    // that lane's place true (a cancelled job leaves it listed): rescore those lanes here.
    const big = withJobs
      .filter((lane) => (this.#catalog.byLane(lane.lane)?.requirement_bytes ?? 0) > this.#largestSlotBytes)
      .map((lane) => lane.lane);
    if (big.length > 0) {
      await this.#lanes.sync(big, now);
      withJobs = await this.#lanes.withJobs();
    }
    const waiting = withJobs
      .filter((lane) => lane.waitingSince < NOTHING_HELD)
      .map((lane) => this.#catalog.byLane(lane.lane))
      .filter((model): model is CatalogModel => model !== undefined)
      .map(asPlacement);
    this.#abandonUnneeded(new Set(waiting.map((model) => model.id)));
    for (const model of waiting) {
      if (this.#closed) return;
      if (this.#served(model)) continue;
      // Rules 1–2 over every slot the host has: a model one slot holds needs no group.
      if (placeModel(model, this.#host(this.#o.slots)).kind !== "group") continue;
      const taken = new Set([...this.#groups.values()].flatMap((group) => group.members));
      const free = [...this.#singles.values()].filter((spec) => !taken.has(spec.name));
      const choice = placeModel(model, this.#host(free), waiting);
      if (choice.kind !== "group") {
        if (!this.#reported.has(model.id))
          this.#log.info(
            { model: model.id, reason: choice.kind === "none" ? choice.reason : null },
            "%s waits for a group, but the GPUs not already in one cannot hold it",
            model.id,
          );
        this.#reported.add(model.id);
        continue;
      }
      this.#reported.delete(model.id);
      this.#form(model, choice.best, now);
    }
  }

  /** A member slot, or a group slot, exited on purpose (retired or stopped). */
  slotExited(name: string): void {
    if (this.#closed) return;
    for (const [key, group] of this.#groups) {
      if (group.phase === "abandoned" && group.members.includes(name)) {
        // It was still leaving when its group was given up: it comes back at once.
        group.gone.add(name);
        this.#o.control.start(this.#singles.get(name)!);
        if (group.gone.size === group.members.length) this.#groups.delete(key);
        return;
      }
      if (group.phase === "draining" && group.members.includes(name)) {
        group.gone.add(name);
        if (group.gone.size < group.members.length) return;
        if (group.bound) clearTimeout(group.bound);
        group.bound = null;
        group.phase = "running";
        this.#log.info({ group: group.spec.name, model: group.model }, "starting the group slot %s", group.spec.name);
        this.#o.control.start(group.spec);
        this.#emit("formed", group);
        return;
      }
      if (group.phase === "running" && group.spec.name === name) {
        this.#groups.delete(key);
        this.#log.info({ group: name }, "the group %s split: its GPUs get their own slots again", name);
        for (const member of group.members) this.#o.control.start(this.#singles.get(member)!);
        this.#emit("split", group);
        return;
      }
    }
  }

  /** Stops looking; a group mid-way stays as it is (the supervisor is stopping every slot). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const group of this.#groups.values()) if (group.bound) clearTimeout(group.bound);
    await this.#ticking;
  }

  /**
   * Gives up the groups still draining for a model that no longer waits (its job was
   * claimed by a group on another host, or left its lane): the slots that already left
   * start again, and those still leaving start again as soon as they have left.
   */
  #abandonUnneeded(waiting: ReadonlySet<string>): void {
    for (const [key, group] of this.#groups) {
      if (group.phase !== "draining" || waiting.has(group.model)) continue;
      if (group.bound) clearTimeout(group.bound);
      group.bound = null;
      group.phase = "abandoned";
      this.#log.info(
        { group: group.spec.name, model: group.model },
        "%s no longer waits: giving up the group %s",
        group.model,
        group.spec.name,
      );
      this.#emit("abandoned", group);
      for (const member of group.gone) this.#o.control.start(this.#singles.get(member)!);
      if (group.gone.size === group.members.length) this.#groups.delete(key);
    }
  }

  /** Whether a group here (forming or formed) can run `model`. */
  #served(model: PlacementModel): boolean {
    const host = this.#host(
      [...this.#groups.values()].filter((group) => group.phase !== "abandoned").map((group) => group.spec),
    );
    return host.devices.some(
      (device) =>
        notAllowed(model, host, device) === null && device.totalBytes - device.reserveBytes >= model.requirementBytes,
    );
  }

  #form(model: PlacementModel, option: PlacementOption, now: number): void {
    const members = option.slots.map((name) => this.#singles.get(name)!);
    const gpus = members.flatMap((spec) => spec.gpus);
    const name = `gpu${gpus.map((gpu) => gpu.index).join("+")}`;
    const first = members[0]!;
    const spec: SlotSpec = {
      ...first,
      id: `${this.#o.host}:${name}`,
      name,
      gpuIndex: gpus[0]!.index,
      gpus,
      devices: gpus.map((gpu) => String(gpu.index)),
      dynamicGroup: { minRequirementBytes: this.#largestSlotBytes, retireWhenIdleMs: this.#o.keepAliveMs },
    };
    const group: Group = {
      spec,
      members: option.slots,
      model: model.id,
      phase: "draining",
      chosenAt: now,
      gone: new Set(),
      bound: null,
    };
    this.#groups.set(name, group);
    this.#log.info(
      { group: name, model: model.id, members: group.members, groupDrainMs: this.#o.groupDrainMs },
      "%s waits for a group: %s retire at their next idle moment, at the latest in %d ms",
      model.id,
      group.members.join(", "),
      this.#o.groupDrainMs,
    );
    this.#emit("draining", group);
    this.#armBound(group, this.#o.groupDrainMs);
    for (const member of group.members) this.#o.control.retire(member);
  }

  /** Placement rule 6 ({@link yieldToGroup}) on a timer: at `chosenAt + groupDrainMs`, the members still up are stopped. */
  #armBound(group: Group, ms: number): void {
    group.bound = setTimeout(() => {
      group.bound = null;
      if (this.#closed || group.phase !== "draining") return;
      const now = this.#o.now();
      const { groupDrainMs } = this.#o;
      if (!yieldToGroup({ groupJobWaitingSince: group.chosenAt, now, groupDrainMs })) {
        this.#armBound(group, group.chosenAt + groupDrainMs - now);
        return;
      }
      const up = group.members.filter((member) => !group.gone.has(member));
      this.#log.info({ group: group.spec.name, slots: up }, "group drain bound reached: stopping %s", up.join(", "));
      this.#emit("bound", group);
      for (const member of up) this.#o.control.stop(member);
    }, ms);
  }

  #host(slots: readonly SlotSpec[]): PlacementHost {
    return {
      host: this.#o.host,
      devices: placementDevices(slots, this.#o.reserveBytes, { totalBytes: 0, freeBytes: 0 }),
      topology: this.#o.topology,
      reservations: this.#o.reservations,
    };
  }

  #emit(event: "draining" | "bound" | "formed" | "split" | "abandoned", group: Group): void {
    const payload: GroupEvent = {
      group: group.spec.name,
      model: group.model,
      members: group.members,
      at: this.#o.now(),
    };
    this.emit(event, payload);
  }
}

/**
 * `slots` with `groupBudgetBytes` on each that may join a dynamic group: Σ(total − reserve)
 * of all of them (the largest group), when there are two or more.
 */
export function withGroupBudgets(slots: readonly SlotSpec[], reserveBytes: number | null): SlotSpec[] {
  const groupable = groupableSlots(slots);
  if (groupable.length < 2) return [...slots];
  const budget = placementDevices(groupable, reserveBytes, { totalBytes: 0, freeBytes: 0 }).reduce(
    (sum, device) => sum + Math.max(0, device.totalBytes - device.reserveBytes),
    0,
  );
  return slots.map((spec) => (groupable.includes(spec) ? { ...spec, groupBudgetBytes: budget } : spec));
}

const asPlacement = (model: CatalogModel): PlacementModel => ({
  id: model.id,
  requirementBytes: model.requirement_bytes,
  placement: model.placement ?? null,
});
