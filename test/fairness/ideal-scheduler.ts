import type { Dispatcher, RunOptions, SimRun } from "./simulate.js";
import { runCluster } from "./simulate.js";
import type { SimJob, SimWorkload } from "./workload.js";

export interface IdealOptions {
  /**
   * Credit a tenant that starts waiting gets, as in fair claim (weighted tokens). 0: the
   * plain virtual-time VTC, which lifts a newcomer to the lane's virtual time (the
   * highest counter served) and gives no head start. @defaultValue 0
   */
  creditTokens?: number;
}

/**
 * An ideal fair scheduler in plain TypeScript, for comparison: exact weighted VTC with
 * perfect knowledge. It charges each job the tokens it will really use (not an estimate
 * corrected later), at the instant it starts; it picks the earliest band, then the lowest
 * counter, ties to the older head job. A tenant that starts waiting is lifted to
 * max(own, virtual time − credit), the virtual time being the highest counter served.
 */
export class IdealScheduler implements Dispatcher {
  readonly #weights: ReadonlyMap<string, number>;
  readonly #credit: number;
  readonly #queues = new Map<string, SimJob[]>();
  readonly counters = new Map<string, number>();
  #virtualTime: number | null = null;
  #held = 0;

  constructor(workload: SimWorkload, options: IdealOptions = {}) {
    this.#weights = workload.weights;
    this.#credit = options.creditTokens ?? 0;
  }

  async hold(jobs: readonly SimJob[]): Promise<void> {
    for (const job of jobs) {
      let queue = this.#queues.get(job.tenant);
      if (!queue) this.#queues.set(job.tenant, (queue = []));
      if (queue.length === 0) {
        const own = this.counters.get(job.tenant) ?? 0;
        const floor = this.#virtualTime === null ? this.#lowestWaiting() : this.#virtualTime - this.#credit;
        this.counters.set(job.tenant, floor === null ? own : Math.max(own, floor));
      }
      queue.push(job);
      queue.sort((a, b) => a.priority - b.priority || a.arrival - b.arrival || (a.id < b.id ? -1 : 1));
      this.#held++;
    }
  }

  #lowestWaiting(): number | null {
    let low: number | null = null;
    for (const [tenant, queue] of this.#queues)
      if (queue.length > 0) low = Math.min(low ?? Infinity, this.counters.get(tenant) ?? 0);
    return low;
  }

  async release(): Promise<SimJob | null> {
    let best: { tenant: string; head: SimJob; band: number; counter: number } | null = null;
    for (const [tenant, queue] of this.#queues) {
      const head = queue[0];
      if (!head) continue;
      const band = head.priority <= 100 ? 0 : head.priority <= 1000 ? 1 : 2;
      const counter = this.counters.get(tenant) ?? 0;
      if (
        !best ||
        band < best.band ||
        (band === best.band &&
          (counter < best.counter || (counter === best.counter && head.arrival < best.head.arrival)))
      )
        best = { tenant, head, band, counter };
    }
    if (!best) return null;
    this.#queues.get(best.tenant)!.shift();
    this.#held--;
    this.#virtualTime = Math.max(this.#virtualTime ?? -Infinity, best.counter);
    this.counters.set(best.tenant, best.counter + best.head.tokens / (this.#weights.get(best.tenant) ?? 1));
    return best.head;
  }

  async settle(): Promise<void> {}

  async held(): Promise<number> {
    return this.#held;
  }
}

/** Runs `workload` through the ideal scheduler. */
export function simulateIdeal(workload: SimWorkload, options: IdealOptions & RunOptions = {}): Promise<SimRun> {
  return runCluster(workload, new IdealScheduler(workload, options), options);
}
