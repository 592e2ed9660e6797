import type { SimJobEvent } from "./sim-engine.js";
import { percentile, round } from "./stats.js";

/** What one offered-rate run of the cluster simulator measured from its job events. */
export interface RunFigures {
  offered_per_s: number;
  submitted: number;
  /** Jobs whose run ended normally exactly once. */
  completed_once: number;
  /** Jobs that ran to the end more than once (a lost lock, a double claim): must be 0. */
  completed_twice: number;
  /** Runs of submitted jobs that a slot cut off (lost lock, cancel, shutdown); the job then ran again elsewhere. */
  runs_cut_off: number;
  /** Submitted jobs with no finished run when the run's deadline passed. */
  missing: number;
  /** Every submitted job finished before the deadline. */
  drained: boolean;
  /** Completed jobs / seconds from the first submit to the last completion (or the deadline). */
  achieved_per_s: number;
  /** Job added (the producer's timestamp) → the slot handed it to its engine, ms. */
  dispatch_p50_ms: number | null;
  dispatch_p99_ms: number | null;
  /**
   * Slot-sequence time left idle while a job waited, as a share of all slot-sequence time
   * over the run: ∫ min(jobs waiting, sequences free) dt / (sequences × run time).
   */
  idle_while_waiting_ratio: number | null;
}

/**
 * Figures of one run from the events of its jobs (`ids`: the submitted ones). `capacity` is
 * the sequences of all slots; `startedAt` the first submit; `endAt` when the run stopped
 * waiting (the last completion, or the deadline).
 */
export function runFigures(o: {
  offered: number;
  ids: readonly string[];
  events: readonly SimJobEvent[];
  capacity: number;
  startedAt: number;
  endAt: number;
}): RunFigures {
  const submitted = new Set(o.ids);
  const runs = new Map<string, SimJobEvent[]>();
  let cutOff = 0;
  for (const event of o.events) {
    if (!submitted.has(event.id)) continue;
    if (!event.ok) {
      cutOff += 1;
      continue;
    }
    const list = runs.get(event.id) ?? [];
    list.push(event);
    runs.set(event.id, list);
  }
  let once = 0;
  let twice = 0;
  const dispatch: number[] = [];
  const firstRuns: SimJobEvent[] = [];
  for (const list of runs.values()) {
    if (list.length === 1) once += 1;
    else twice += 1;
    const first = list.reduce((a, b) => (b.startedAt < a.startedAt ? b : a));
    dispatch.push(first.startedAt - first.createdAt);
    firstRuns.push(first);
  }
  const missing = submitted.size - runs.size;
  const lastEnd = firstRuns.reduce((max, event) => Math.max(max, event.endedAt), o.startedAt);
  const endAt = missing === 0 ? lastEnd : o.endAt;
  const seconds = Math.max(0.001, (endAt - o.startedAt) / 1000);
  return {
    offered_per_s: o.offered,
    submitted: submitted.size,
    completed_once: once,
    completed_twice: twice,
    runs_cut_off: cutOff,
    missing,
    drained: missing === 0,
    achieved_per_s: round(runs.size / seconds, 1)!,
    dispatch_p50_ms: round(percentile(dispatch, 50), 1),
    dispatch_p99_ms: round(percentile(dispatch, 99), 1),
    idle_while_waiting_ratio: round(
      idleWhileWaiting(o.events, o.capacity, o.startedAt, endAt) / (o.capacity * (endAt - o.startedAt)),
      4,
    ),
  };
}

/**
 * Sequence-ms idle while jobs waited, between `from` and `to`: a sweep over every run's
 * wait (created → started) and busy time (started → ended), integrating
 * min(waiting, capacity − busy). A job's wait counts from when the producer added it, so
 * the hand-off itself (a few ms per job even on an idle cluster) is part of the figure.
 */
export function idleWhileWaiting(events: readonly SimJobEvent[], capacity: number, from: number, to: number): number {
  const changes: [number, number, number][] = [];
  for (const event of events) {
    changes.push([event.createdAt, 1, 0], [event.startedAt, -1, 1], [event.endedAt, 0, -1]);
  }
  changes.sort((a, b) => a[0] - b[0]);
  let waiting = 0;
  let busy = 0;
  let at = from;
  let idle = 0;
  for (const [time, dWait, dBusy] of changes) {
    const t = Math.min(Math.max(time, from), to);
    if (t > at) idle += (t - at) * Math.min(waiting, Math.max(0, capacity - busy));
    at = Math.max(at, t);
    waiting += dWait;
    busy += dBusy;
  }
  return idle;
}
