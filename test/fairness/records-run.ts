import type { JobRecord } from "@corral/shared";
import type { RunJob, SimRun } from "./simulate.js";
import type { SimCluster, SimWorkload } from "./workload.js";

/**
 * Real jobs (their final records) as a simulated run, times in ms from the first submit:
 * a job arrives at `created_at`, starts at `started_at` and ends at `finished_at`, and its
 * tokens are what it used. The same figures then apply, and the ideal scheduler can
 * replay the jobs (their submit times and run times) on the same sequences.
 */
export function recordsRun(records: readonly JobRecord[], cluster: SimCluster): SimRun {
  const t0 = Math.min(...records.map((r) => r.created_at));
  const runs: RunJob[] = records.map((r) => {
    if (r.started_at === null || r.finished_at === null) throw new Error(`job ${r.id} has not run (${r.status})`);
    const tokens = (r.result?.usage.prompt_tokens ?? 0) + (r.result?.usage.completion_tokens ?? 0);
    return {
      id: r.id,
      tenant: r.tenant,
      arrival: r.created_at - t0,
      priority: r.priority,
      cost: tokens,
      tokens,
      duration: r.finished_at - r.started_at,
      start: r.started_at - t0,
      end: r.finished_at - t0,
      sequence: "",
    };
  });
  const workload: SimWorkload = {
    cluster,
    weights: new Map(),
    jobs: runs
      .map(({ start: _start, end: _end, sequence: _sequence, ...job }) => job)
      .sort((a, b) => a.arrival - b.arrival || (a.id < b.id ? -1 : 1)),
  };
  return { workload, runs: runs.sort((a, b) => a.start - b.start), idleWhileHeld: [] };
}
