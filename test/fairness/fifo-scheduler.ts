import type { Dispatcher, RunOptions, SimRun } from "./simulate.js";
import { runCluster } from "./simulate.js";
import type { SimJob, SimWorkload } from "./workload.js";

/**
 * First come, first served, with no notion of tenants: what one shared BullMQ list does
 * when every job has the same priority (a heavy backlog queued first is served first).
 * The reference for throughput (nothing can keep the sequences busier) and for what
 * fairness changes.
 */
export class FifoScheduler implements Dispatcher {
  readonly #queue: SimJob[] = [];

  async hold(jobs: readonly SimJob[]): Promise<void> {
    this.#queue.push(...jobs);
  }

  async release(): Promise<SimJob | null> {
    return this.#queue.shift() ?? null;
  }

  async settle(): Promise<void> {}

  async held(): Promise<number> {
    return this.#queue.length;
  }
}

export function simulateFifo(workload: SimWorkload, options: RunOptions = {}): Promise<SimRun> {
  return runCluster(workload, new FifoScheduler(), options);
}
