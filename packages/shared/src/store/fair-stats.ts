import type { FairQueue } from "./fair-queue.js";

/** Fair claim's state per tenant, as the scheduler's metrics report it. */
export interface FairStats {
  /** Each tenant's weighted virtual token counter (all lanes share it). */
  counters: Map<string, number>;
  /** Held jobs per lane and tenant; only tenants holding at least one. */
  held: Map<string, Map<string, number>>;
}

/** Every tenant's counter, and each lane's held jobs per waiting tenant, read at once. */
export async function readFairStats(fair: FairQueue, lanes: readonly string[]): Promise<FairStats> {
  const [counters, perLane] = await Promise.all([
    fair.counters(),
    Promise.all(lanes.map(async (lane) => fair.tenants(lane))),
  ]);
  const held = new Map<string, Map<string, number>>();
  lanes.forEach((lane, i) => {
    const tenants = new Map<string, number>();
    for (const view of perLane[i] ?? []) if (view.held > 0) tenants.set(view.tenant, view.held);
    held.set(lane, tenants);
  });
  return { counters: new Map([...counters].filter(([, counter]) => Number.isFinite(counter))), held };
}
