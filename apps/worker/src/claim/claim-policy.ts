/**
 * Which lane a slot claims from next: a pure function of what the slot sees, so the
 * policy can be tested without Redis or llama.cpp.
 *
 * 1. A lane whose model is loaded here with a free sequence wins, since swapping costs
 *    seconds to minutes. The slot stays with its loaded models until their lanes are
 *    empty; while they are all busy with a backlog it waits rather than load another.
 * 2. Otherwise the lane whose head job has the best (lowest) BullMQ priority, then the
 *    oldest head job, among the lanes that fit.
 * 3. A lane whose head job has waited longer than `swapAfterMs` ("starved") overrides
 *    the affinity of rule 1: the slot loads it as soon as it fits, and when it would only
 *    fit after this slot's busy models finish, the slot stops claiming for them so they
 *    drain, then swaps.
 *
 * A lane fits when its requirement ≤ live free memory − reserve + the bytes held by this
 * slot's idle models (which it may unload). Lanes that would not fit even with every
 * model of this slot unloaded are never candidates here.
 */

export interface LaneView {
  /** BullMQ queue name. */
  lane: string;
  /** Catalog id of the lane's model. */
  model: string;
  /** Jobs ready to claim (wait + prioritized + due delayed). */
  waiting: number;
  /** BullMQ priority of the head job (lower runs first; 0 = none, which BullMQ runs first). */
  headPriority: number;
  /** When the head job was added (or became due), ms since the epoch. */
  headTimestamp: number;
  /** Memory the model needs on this slot, bytes. */
  requirementBytes: number;
}

export interface LoadedView {
  model: string;
  sequences: number;
  busySequences: number;
  /** Memory the loaded model holds (its requirement), bytes. */
  bytes: number;
  /** Last time a job started or finished on it, ms since the epoch. */
  lastUsedAt: number;
}

export interface PolicyInput {
  lanes: readonly LaneView[];
  loaded: readonly LoadedView[];
  /** Free memory of this slot's device right now, bytes. */
  liveFreeBytes: number;
  reserveBytes: number;
  /** Models not to load here right now (out-of-memory cooldown). Loaded ones still run. */
  blocked: ReadonlySet<string>;
  /** Whether another model may be loaded (false while one is loading). */
  canLoad: boolean;
  now: number;
  swapAfterMs: number;
}

export type ClaimDecision =
  /** Claim the lane's next job and run it on the loaded model. */
  | { kind: "run"; lane: string; model: string }
  /** Unload `evict` (idle models, least recently used first), claim the lane's next job, load its model. */
  | { kind: "load"; lane: string; model: string; evict: string[] }
  /** Claim nothing now. `reason` is for logs. */
  | { kind: "wait"; reason: "no-work" | "busy" | "draining-for-swap" | "no-fit" | "loading" };

/** Priority first (lower wins; BullMQ's 0 = none also runs first), then the older head job, then the lane name. */
export function compareLanes(a: LaneView, b: LaneView): number {
  return a.headPriority - b.headPriority || a.headTimestamp - b.headTimestamp || (a.lane < b.lane ? -1 : 1);
}

export function decideClaim(input: PolicyInput): ClaimDecision {
  const loadedByModel = new Map(input.loaded.map((model) => [model.model, model]));
  const idle = input.loaded.filter((model) => model.busySequences === 0);
  const idleBytes = sum(idle.map((model) => model.bytes));
  const allBytes = sum(input.loaded.map((model) => model.bytes));
  const base = input.liveFreeBytes - input.reserveBytes;

  const ready = input.lanes.filter((lane) => lane.waiting > 0);
  if (ready.length === 0) return { kind: "wait", reason: "no-work" };

  const affine = ready.filter((lane) => loadedByModel.has(lane.model)).sort(compareLanes);
  const others = ready
    .filter((lane) => !loadedByModel.has(lane.model) && !input.blocked.has(lane.model))
    // Never a candidate: would not fit even with every model of this slot unloaded.
    .filter((lane) => lane.requirementBytes <= base + allBytes)
    .sort(compareLanes);
  const fitsNow = (lane: LaneView) => lane.requirementBytes <= base + idleBytes;
  const starved = others.filter((lane) => input.now - lane.headTimestamp >= input.swapAfterMs);

  if (starved.length > 0) {
    const next = starved.find(fitsNow);
    if (next !== undefined) return load(next, input);
    // The starved lane fits once this slot's busy models finish: stop feeding them.
    if (!input.canLoad) return { kind: "wait", reason: "loading" };
    return { kind: "wait", reason: "draining-for-swap" };
  }

  if (affine.length > 0) {
    const withFree = affine.find((lane) => {
      const model = loadedByModel.get(lane.model)!;
      return model.busySequences < model.sequences;
    });
    if (withFree !== undefined) return { kind: "run", lane: withFree.lane, model: withFree.model };
    return { kind: "wait", reason: "busy" };
  }

  const next = others.find(fitsNow);
  if (next !== undefined) return load(next, input);
  return { kind: "wait", reason: others.length > 0 ? "no-fit" : "no-work" };
}

/** Load `lane`'s model, unloading idle models (least recently used first) only as far as needed. */
function load(lane: LaneView, input: PolicyInput): ClaimDecision {
  if (!input.canLoad) return { kind: "wait", reason: "loading" };
  let available = input.liveFreeBytes - input.reserveBytes;
  const evict: string[] = [];
  const idle = input.loaded
    .filter((model) => model.busySequences === 0)
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt || (a.model < b.model ? -1 : 1));
  for (const model of idle) {
    if (lane.requirementBytes <= available) break;
    evict.push(model.model);
    available += model.bytes;
  }
  return { kind: "load", lane: lane.lane, model: lane.model, evict };
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
