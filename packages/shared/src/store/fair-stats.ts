import type { Redis } from "ioredis";
import type { RedisKeys } from "../keys.js";

/** Fair claim's state per tenant, as the scheduler's metrics report it. */
export interface FairStats {
  /** Each tenant's weighted virtual token counter (all lanes share it). */
  counters: Map<string, number>;
  /** Held jobs per lane and tenant; only tenants holding at least one. */
  held: Map<string, Map<string, number>>;
}

/**
 * Reads every tenant's counter ({@link RedisKeys.fairCounters}) and each lane's held jobs
 * per tenant ({@link RedisKeys.fairBacklog}), in one pipelined round trip.
 */
export async function readFairStats(redis: Redis, keys: RedisKeys, lanes: readonly string[]): Promise<FairStats> {
  const pipeline = redis.pipeline().hgetall(keys.fairCounters);
  for (const lane of lanes) pipeline.hgetall(keys.fairBacklog(lane));
  const replies = (await pipeline.exec()) ?? [];
  if (replies.length !== lanes.length + 1) throw new Error("fair stats: a pipeline reply is missing");
  const hash = (i: number): Record<string, string> => {
    const [error, value] = replies[i]!;
    if (error) throw error;
    return value as Record<string, string>;
  };
  const counters = new Map<string, number>();
  for (const [tenant, value] of Object.entries(hash(0))) {
    const counter = Number(value);
    if (Number.isFinite(counter)) counters.set(tenant, counter);
  }
  const held = new Map<string, Map<string, number>>();
  lanes.forEach((lane, i) => {
    const perTenant = new Map<string, number>();
    for (const [field, value] of Object.entries(hash(i + 1))) {
      // Fields under `|` are the lane's own (`|n`, `|since`, …), not a tenant's.
      const count = Number(value);
      if (!field.startsWith("|") && count > 0) perTenant.set(field, count);
    }
    held.set(lane, perTenant);
  });
  return { counters, held };
}
