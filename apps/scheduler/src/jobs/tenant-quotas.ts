import type { Redis } from "ioredis";
import { nextUtcMidnight, tenantSetting, utcDay, type RedisKeys } from "@corral/shared";
import type { TokenBudget } from "./token-budget.js";
import type { AudioBudget } from "./audio-budget.js";

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
   * `CORRAL_TENANT_AUDIO_SECONDS_PER_DAY`; `used` counts the seconds of decoded audio of the
   * transcriptions and translations admitted this UTC day (counted at admission).
   */
  daily_audio_seconds: { limit: number | null; used: number; day: string; resets_at: number };
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
  /** Audio seconds per day. @defaultValue none (limit null, used 0) */
  audioBudget?: AudioBudget;
  /** `CORRAL_TENANT_SHARES`; tenants not named have 1. */
  shares: ReadonlyMap<string, number>;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** Reads a tenant's quotas and usage: four Redis reads in one round trip, nothing written. */
export class TenantQuotas {
  readonly #o: Required<Omit<TenantQuotasOptions, "audioBudget">> & { audioBudget: AudioBudget | null };

  constructor(options: TenantQuotasOptions) {
    this.#o = { clock: Date.now, ...options, audioBudget: options.audioBudget ?? null };
  }

  async of(tenant: string): Promise<QuotaObject> {
    const { redis, keys, shares } = this.#o;
    const now = this.#o.clock();
    const day = utcDay(now);
    const maxActive = tenantSetting(this.#o.maxActive, tenant);
    const [used, running, counter, audioUsed] = await Promise.all([
      redis.hget(keys.tokensUsed(day), tenant),
      // Places whose lease has not run out (expired ones are dropped by the slots).
      maxActive === null ? null : redis.zcount(keys.tenantActive(tenant), `(${now}`, "+inf"),
      redis.hget(keys.fairCounters, tenant),
      this.#o.audioBudget?.usedToday(tenant) ?? 0,
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
      daily_audio_seconds: {
        limit: this.#o.audioBudget?.budgetOf(tenant) ?? null,
        used: audioUsed,
        day,
        resets_at: Math.floor(nextUtcMidnight(now) / 1000),
      },
      fair_share: { share: shares.get(tenant) ?? 1, counter: counter === null ? null : Number(counter) },
    };
  }
}
