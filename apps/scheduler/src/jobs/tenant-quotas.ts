import type { Redis } from "ioredis";
import { nextUtcMidnight, tenantSetting, utcDay, type RedisKeys } from "@corral/shared";
import type { TokenBudget } from "./token-budget.js";

/** A tenant's limits and where it stands against them (`GET /v1/quota`). */
export interface QuotaObject {
  object: "quota";
  tenant: string;
  /** `CORRAL_MAX_QUEUED_PER_TENANT`: more queued jobs get 429 `queue_full`. */
  queued_jobs: { limit: number };
  /** `CORRAL_TENANT_MAX_ACTIVE`; `running` is counted only where there is a limit. */
  active_jobs: { limit: number | null; running: number | null };
  /** `CORRAL_TENANT_TOKENS_PER_DAY`; `used` counts prompt + completion tokens this UTC day. */
  daily_tokens: { limit: number | null; used: number; day: string; resets_at: number };
  /**
   * The tenant's share (`CORRAL_TENANT_SHARES`) and its fair-claim virtual token counter
   * (weighted tokens served; null before its first job). Backlogged tenants with lower
   * counters are served first.
   */
  fair_share: { share: number; counter: number | null };
}

export interface TenantQuotasOptions {
  redis: Redis;
  keys: RedisKeys;
  maxQueuedPerTenant: number;
  /** `*`: every tenant not named. */
  maxActive: ReadonlyMap<string, number>;
  tokenBudget: TokenBudget;
  /** `CORRAL_TENANT_SHARES`; tenants not named have 1. */
  shares: ReadonlyMap<string, number>;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** Reads a tenant's quotas and usage: three Redis reads in one round trip, nothing written. */
export class TenantQuotas {
  readonly #o: Required<TenantQuotasOptions>;

  constructor(options: TenantQuotasOptions) {
    this.#o = { clock: Date.now, ...options };
  }

  async of(tenant: string): Promise<QuotaObject> {
    const { redis, keys, shares } = this.#o;
    const now = this.#o.clock();
    const day = utcDay(now);
    const maxActive = tenantSetting(this.#o.maxActive, tenant);
    const [used, running, counter] = await Promise.all([
      redis.hget(keys.tokensUsed(day), tenant),
      // Places whose lease has not run out (expired ones are dropped by the slots).
      maxActive === null ? null : redis.zcount(keys.tenantActive(tenant), `(${now}`, "+inf"),
      redis.hget(keys.fairCounters, tenant),
    ]);
    return {
      object: "quota",
      tenant,
      queued_jobs: { limit: this.#o.maxQueuedPerTenant },
      active_jobs: { limit: maxActive, running },
      daily_tokens: {
        limit: this.#o.tokenBudget.budgetOf(tenant),
        used: Number(used ?? 0),
        day,
        resets_at: Math.floor(nextUtcMidnight(now) / 1000),
      },
      fair_share: { share: shares.get(tenant) ?? 1, counter: counter === null ? null : Number(counter) },
    };
  }
}
