import type { Redis } from "ioredis";
import type { RedisKeys } from "./keys.js";

/**
 * Daily token budgets. Workers count the tokens (prompt + completion) each tenant's jobs
 * used, per UTC day, in one Redis hash per day ({@link RedisKeys.tokensUsed}); schedulers
 * read today's hash and refuse new work from a tenant that has used its budget.
 */

/** The UTC day of `ms` (ms since the epoch), `YYYY-MM-DD`. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** When the UTC day of `ms` ends (ms since the epoch): the next 00:00 UTC. */
export function nextUtcMidnight(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/** How long a day's hash is kept after its last write: today's and yesterday's stay readable. */
const TOKENS_TTL_SECONDS = 2 * 24 * 3600;

/** Adds each tenant's tokens to the UTC day of `now`, in one round trip (MULTI). */
export async function addTokensUsed(
  redis: Redis,
  keys: RedisKeys,
  tokens: ReadonlyMap<string, number>,
  options: { now: number },
): Promise<void> {
  if (tokens.size === 0) return;
  const key = keys.tokensUsed(utcDay(options.now));
  const multi = redis.multi();
  for (const [tenant, count] of tokens) multi.hincrby(key, tenant, Math.round(count));
  multi.expire(key, TOKENS_TTL_SECONDS);
  const results = await multi.exec();
  const failed = results?.find(([error]) => error !== null);
  if (failed) throw failed[0];
}

/** The tokens each tenant used on the UTC day of `now` (tenants that used none are absent). */
export async function readTokensUsed(
  redis: Redis,
  keys: RedisKeys,
  options: { now: number },
): Promise<Map<string, number>> {
  const used = new Map<string, number>();
  for (const [tenant, raw] of Object.entries(await redis.hgetall(keys.tokensUsed(utcDay(options.now))))) {
    const count = Number(raw);
    if (Number.isFinite(count) && count > 0) used.set(tenant, count);
  }
  return used;
}
