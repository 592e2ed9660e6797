import type { Redis } from "ioredis";
import { nextUtcMidnight, tenantSetting, utcDay, type RedisKeys } from "@corral/shared";
import { AudioBudgetExceededError } from "./errors.js";

export interface AudioBudgetOptions {
  redis: Redis;
  keys: RedisKeys;
  /** Each tenant's seconds of audio per UTC day (`CORRAL_TENANT_AUDIO_SECONDS_PER_DAY`); `*` is every other tenant's. */
  budgets: ReadonlyMap<string, number>;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** How long a day's hash is kept after its last write: today's and yesterday's stay readable. */
const USED_TTL_SECONDS = 2 * 24 * 3600;

/**
 * Adds a job's audio to its tenant's day unless that takes the tenant past its budget
 * (budget < 0: no budget). Returns the new total (ms), or -1 - the current total when refused.
 */
const RESERVE = `
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local add = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
if budget >= 0 and used + add > budget then return -1 - used end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], add)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return total`;

/**
 * Audio seconds as a usage unit beside tokens. Each transcription or translation job's
 * decoded seconds are counted against its tenant's UTC day when the job is admitted (the
 * scheduler has measured them; nothing waits for the worker), atomically with the check
 * against the tenant's budget, so concurrent submits cannot pass it together. A job
 * refused after it was counted is taken off again; a job cancelled after it was queued
 * still counts. Counted (in ms, in {@link RedisKeys.audioUsed}) whether or not the tenant
 * has a budget, so `/v1/quota` and the metrics show every tenant's use.
 */
export class AudioBudget {
  readonly #o: Required<AudioBudgetOptions>;

  constructor(options: AudioBudgetOptions) {
    this.#o = { clock: Date.now, ...options };
  }

  /** The tenant's seconds of audio per day, or null when it has no budget. */
  budgetOf(tenant: string): number | null {
    return tenantSetting(this.#o.budgets, tenant);
  }

  /**
   * Counts `seconds` of audio for the tenant today, and returns what takes them off again.
   * @throws AudioBudgetExceededError (429) when they would take the tenant past its budget.
   */
  async reserve(tenant: string, seconds: number): Promise<() => Promise<void>> {
    const { redis, keys } = this.#o;
    const now = this.#o.clock();
    const key = keys.audioUsed(utcDay(now));
    const budget = this.budgetOf(tenant);
    const ms = Math.max(0, Math.round(seconds * 1000));
    const result = Number(
      await redis.eval(RESERVE, 1, key, tenant, ms, budget === null ? -1 : Math.round(budget * 1000), USED_TTL_SECONDS),
    );
    if (result < 0) {
      const used = (-1 - result) / 1000;
      const resetsAt = nextUtcMidnight(now);
      throw new AudioBudgetExceededError(
        `Tenant ${tenant} has used ${used} of its ${budget} seconds of audio for ${utcDay(now)} (UTC), and this ` +
          `file is ${seconds} s (CORRAL_TENANT_AUDIO_SECONDS_PER_DAY). The budget resets at ` +
          `${new Date(resetsAt).toISOString()}.`,
        Math.max(1, Math.ceil((resetsAt - now) / 1000)),
      );
    }
    let released = false;
    return async () => {
      if (released || ms === 0) return;
      released = true;
      await redis.hincrby(key, tenant, -ms);
    };
  }

  /** The tenant's seconds of audio today. */
  async usedToday(tenant: string): Promise<number> {
    const raw = await this.#o.redis.hget(this.#o.keys.audioUsed(utcDay(this.#o.clock())), tenant);
    return Number(raw ?? 0) / 1000;
  }

  /** Every tenant's seconds of audio today (tenants with none are absent). */
  async allUsedToday(): Promise<Map<string, number>> {
    const used = new Map<string, number>();
    const all = await this.#o.redis.hgetall(this.#o.keys.audioUsed(utcDay(this.#o.clock())));
    for (const [tenant, raw] of Object.entries(all)) {
      const ms = Number(raw);
      if (Number.isFinite(ms) && ms > 0) used.set(tenant, ms / 1000);
    }
    return used;
  }

  /** The tenants with a budget of their own (not `*`) and their budgets. */
  get named(): ReadonlyMap<string, number> {
    return new Map([...this.#o.budgets].filter(([tenant]) => tenant !== "*"));
  }
}
