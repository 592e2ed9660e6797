import { percentile } from "../../bench/lib/stats.js";
import type { RunJob, SimRun } from "./simulate.js";

/** Figures of a simulated run. Times are ms; a wait is start − arrival. */

export const jobsOf = (run: SimRun, tenant: string): RunJob[] => run.runs.filter((job) => job.tenant === tenant);

export const waits = (run: SimRun, tenant: string): number[] =>
  jobsOf(run, tenant).map((job) => job.start - job.arrival);

export const p95Wait = (run: SimRun, tenant: string): number => percentile(waits(run, tenant), 95);

/** Completed jobs per second, from the first arrival to the last end. */
export function jobsPerSecond(run: SimRun): number {
  const first = Math.min(...run.runs.map((job) => job.arrival));
  const last = Math.max(...run.runs.map((job) => job.end));
  return run.runs.length / ((last - first) / 1000);
}

export const meanDuration = (run: SimRun): number =>
  run.runs.reduce((sum, job) => sum + job.duration, 0) / run.runs.length;

/** How many of `heavy`'s jobs started while at least one of `light`'s had arrived and not started yet. */
export function startedWhileWaiting(run: SimRun, heavy: string, light: string): number {
  const lights = jobsOf(run, light);
  return jobsOf(run, heavy).filter((job) => lights.some((l) => l.arrival <= job.start && l.start > job.start)).length;
}

/** The intervals when `tenant` has work waiting (some job arrived and not started), merged. */
export function backlogged(run: SimRun, tenant: string): [number, number][] {
  const spans = jobsOf(run, tenant)
    .filter((job) => job.start > job.arrival)
    .map((job) => [job.arrival, job.start] as [number, number])
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [from, to] of spans) {
    const last = merged[merged.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/** The windows of `windowMs` (on a grid from 0) inside which every one of `tenants` has work waiting throughout. */
export function backloggedWindows(run: SimRun, tenants: readonly string[], windowMs: number): [number, number][] {
  const intervals = tenants.map((tenant) => backlogged(run, tenant));
  const end = Math.max(...run.runs.map((job) => job.end));
  const windows: [number, number][] = [];
  for (let from = 0; from + windowMs <= end; from += windowMs) {
    const to = from + windowMs;
    if (intervals.every((list) => list.some(([a, b]) => a <= from && b >= to))) windows.push([from, to]);
  }
  return windows;
}

/**
 * The service `tenant` got in [from, to): the real tokens of its jobs, each spread evenly
 * over its run, counted for the part of the run inside the window, ÷ the tenant's weight.
 */
export function service(run: SimRun, tenant: string, from: number, to: number, weighted = true): number {
  let total = 0;
  for (const job of jobsOf(run, tenant)) {
    const overlap = Math.min(job.end, to) - Math.max(job.start, from);
    if (overlap > 0) total += (job.tokens * overlap) / job.duration;
  }
  return weighted ? total / (run.workload.weights.get(tenant) ?? 1) : total;
}

/** Jain's fairness index of the values: (Σx)² / (n Σx²), 1 when all are equal, 1/n when one gets everything. */
export function jain(values: readonly number[]): number {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares);
}
