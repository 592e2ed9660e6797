import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  TokenBudgetExceededError,
  nextUtcMidnight,
  readTokensUsed,
  tenantSetting,
  utcDay,
  type RedisKeys,
} from "@corral/shared";

export interface TokenBudgetOptions {
  redis: Redis;
  keys: RedisKeys;
  /** Each tenant's tokens per UTC day (`CORRAL_TENANT_TOKENS_PER_DAY`); `*` is every other tenant's. */
  budgets: ReadonlyMap<string, number>;
  /** How long read counts are used before they are read again. @defaultValue 5000 */
  refreshMs?: number;
  logger: Logger;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** A tenant's budget for today as last read. */
export interface TenantBudget {
  tenant: string;
  /** Tokens per UTC day. */
  budget: number;
  /** Tokens used today, as last read (written by workers every few seconds). */
  used: number;
  /** When the day ends and the count starts again (ms since the epoch). */
  resetsAt: number;
}

/**
 * Daily token budgets: refuses new work from a tenant whose jobs used its budget today
 * (UTC). Workers count each job's tokens (see `addTokensUsed` in @corral/shared); this
 * reads today's counts at most every `refreshMs`, in the background, so a submit never
 * waits on it and costs no Redis command of its own. The check is at admission: what a
 * tenant had queued or running when it reached its budget still runs, so a day can end a
 * little above it. With no budgets configured it does nothing.
 */
export class TokenBudget {
  readonly #o: Required<TokenBudgetOptions>;
  #used = new Map<string, number>();
  #day = "";
  #readAt = 0;
  #reading: Promise<void> | null = null;

  constructor(options: TokenBudgetOptions) {
    this.#o = { refreshMs: 5000, clock: Date.now, ...options };
  }

  /** Whether any tenant has a budget. */
  get enabled(): boolean {
    return this.#o.budgets.size > 0;
  }

  /** The tenant's tokens per day, or null when it has no budget. */
  budgetOf(tenant: string): number | null {
    return tenantSetting(this.#o.budgets, tenant);
  }

  /**
   * Throws TokenBudgetExceededError (429) when the tenant has used its tokens for today,
   * from the counts as last read; starts a read in the background when they are stale.
   */
  admit(tenant: string): void {
    const budget = this.budgetOf(tenant);
    if (budget === null) return;
    const now = this.#o.clock();
    if (this.#stale(now)) void this.refresh();
    const used = this.#usedToday(tenant, now);
    if (used < budget) return;
    const resetsAt = nextUtcMidnight(now);
    throw new TokenBudgetExceededError(
      `Tenant ${tenant} has used ${used} of its ${budget} tokens for ${utcDay(now)} (UTC). ` +
        `The budget resets at ${new Date(resetsAt).toISOString()}; work already queued still runs.`,
      Math.max(1, Math.ceil((resetsAt - now) / 1000)),
    );
  }

  /** Each tenant with a budget (and each other tenant that used tokens today, under `*`), read again when stale. */
  async current(): Promise<TenantBudget[]> {
    const now = this.#o.clock();
    if (this.#stale(now)) await this.refresh();
    const tenants = new Set([...this.#o.budgets.keys()].filter((t) => t !== "*"));
    if (this.#o.budgets.has("*")) for (const tenant of this.#used.keys()) tenants.add(tenant);
    const resetsAt = nextUtcMidnight(now);
    return [...tenants].map((tenant) => ({
      tenant,
      budget: this.budgetOf(tenant)!,
      used: this.#usedToday(tenant, now),
      resetsAt,
    }));
  }

  /** Reads today's counts now (one HGETALL). Never rejects: a failed read keeps the last counts. */
  refresh(): Promise<void> {
    this.#reading ??= (async () => {
      const now = this.#o.clock();
      this.#readAt = now;
      try {
        this.#used = await readTokensUsed(this.#o.redis, this.#o.keys, { now });
        this.#day = utcDay(now);
      } catch (error) {
        this.#o.logger.warn({ err: error }, "could not read tenants' tokens used today; budgets keep the last counts");
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  /** Counts read on an earlier day do not hold against today's budget. */
  #usedToday(tenant: string, now: number): number {
    return this.#day === utcDay(now) ? (this.#used.get(tenant) ?? 0) : 0;
  }

  /** Whether the last read is older than `refreshMs` or was on an earlier day. */
  #stale(now: number): boolean {
    return now - this.#readAt >= this.#o.refreshMs || utcDay(this.#readAt) !== utcDay(now);
  }
}
