import type { Redis } from "ioredis";
import type { RedisKeys } from "./keys.js";
import { runCommand } from "./store/redis-commands.js";

/**
 * Fair share, after Slurm's classic fair-share factor. Workers charge each tenant the
 * slot time its jobs used, decayed with a half-life, in one Redis hash
 * ({@link RedisKeys.usage}). From it a scheduler computes each tenant's factor
 * `F = 2^(-U/S)`: U is the tenant's part of all recent usage, S its part of all shares.
 * F is 1 for a tenant that used nothing, 0.5 for one that used exactly its share, and
 * falls toward 0 the more it used beyond it. A new job's priority level within its band
 * is then pushed back by up to `weight` levels as F falls, so a light user's jobs overtake
 * a heavy user's backlog.
 */

/** A tenant's usage: ms of slot time, decayed to `at` (ms since the epoch). */
export interface TenantUsage {
  value: number;
  at: number;
}

/** `usage` decayed from its `at` to `now`. */
export const decayUsage = (usage: TenantUsage, now: number, halfLifeMs: number): number =>
  usage.value * 2 ** (-Math.max(0, now - usage.at) / halfLifeMs);

/** The usage hash as read with HGETALL; fields that do not parse are left out. */
export function parseUsage(hash: Record<string, string>): Map<string, TenantUsage> {
  const usage = new Map<string, TenantUsage>();
  for (const [tenant, raw] of Object.entries(hash)) {
    const [value, at] = raw.split(":").map(Number);
    if (Number.isFinite(value) && Number.isFinite(at) && value! >= 0) usage.set(tenant, { value: value!, at: at! });
  }
  return usage;
}

/**
 * Each tenant's fair-share factor in (0, 1]. `usage` is every tenant's decayed usage (any
 * unit), `shares` the configured shares (a tenant not named has `defaultShare`), and
 * `tenants` the tenants to include besides those two (for instance every tenant with an
 * API key).
 */
export function fairShareFactors(
  usage: ReadonlyMap<string, number>,
  shares: ReadonlyMap<string, number>,
  tenants: Iterable<string> = [],
  defaultShare = 1,
): Map<string, number> {
  const all = new Set([...tenants, ...shares.keys(), ...usage.keys()]);
  const shareOf = (tenant: string) => shares.get(tenant) ?? defaultShare;
  let totalUsage = 0;
  let totalShares = 0;
  for (const tenant of all) {
    totalUsage += Math.max(0, usage.get(tenant) ?? 0);
    totalShares += shareOf(tenant);
  }
  const factors = new Map<string, number>();
  for (const tenant of all) {
    const used = totalUsage > 0 ? Math.max(0, usage.get(tenant) ?? 0) / totalUsage : 0;
    const share = totalShares > 0 ? shareOf(tenant) / totalShares : 0;
    factors.set(tenant, used === 0 ? 1 : share === 0 ? 0 : 2 ** (-used / share));
  }
  return factors;
}

/**
 * The priority level (1 most urgent – 100) a job gets within its band: the client's
 * level pushed back by `weight × (1 − factor)` levels, rounded, within 1–100.
 */
export function fairShareLevel(clientLevel: number, factor: number, weight: number): number {
  const level = clientLevel + Math.round(weight * (1 - Math.min(1, Math.max(0, factor))));
  return Math.min(100, Math.max(1, level));
}

/** Adds each tenant's charge (ms of slot time) to its decayed usage, atomically, in one round trip (`chargeUsage-1.lua`). */
export async function chargeUsage(
  redis: Redis,
  keys: RedisKeys,
  charges: ReadonlyMap<string, number>,
  options: { now: number; halfLifeMs: number },
): Promise<void> {
  if (charges.size === 0) return;
  const args: (string | number)[] = [options.now, options.halfLifeMs];
  for (const [tenant, ms] of charges) args.push(tenant, ms);
  await runCommand(redis, "chargeUsage", [keys.usage], args);
}

/** Every tenant's usage, decayed to `now`. */
export async function readUsage(
  redis: Redis,
  keys: RedisKeys,
  options: { now: number; halfLifeMs: number },
): Promise<Map<string, number>> {
  const usage = new Map<string, number>();
  for (const [tenant, u] of parseUsage(await redis.hgetall(keys.usage)))
    usage.set(tenant, decayUsage(u, options.now, options.halfLifeMs));
  return usage;
}

/** The default half-life of usage: a tenant's use an hour ago counts half. */
export const DEFAULT_USAGE_HALF_LIFE_MS = 60 * 60 * 1000;
