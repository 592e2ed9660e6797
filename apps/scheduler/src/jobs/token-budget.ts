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
import { BackgroundRead } from "./background-read.js";

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
  /** Today's counts as last read, and the UTC day they were read on. */
  readonly #read: BackgroundRead<{ used: Map<string, number>; day: string }>;

  constructor(options: TokenBudgetOptions) {
    this.#o = { refreshMs: 5000, clock: Date.now, ...options };
    const { redis, keys } = this.#o;
    this.#read = new BackgroundRead({
      read: async (now) => ({ used: await readTokensUsed(redis, keys, { now }), day: utcDay(now) }),
      initial: { used: new Map(), day: "" },
      refreshMs: this.#o.refreshMs,
      // A read on an earlier day is stale at once.
      staleAfter: (readAt, now) => utcDay(readAt) !== utcDay(now),
      logger: this.#o.logger,
      failure: "could not read tenants' tokens used today; budgets keep the last counts",
      clock: this.#o.clock,
    });
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
    const used = usedOn(this.#read.peek(), tenant, now);
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
    const counts = await this.#read.current();
    const now = this.#o.clock();
    const tenants = new Set([...this.#o.budgets.keys()].filter((t) => t !== "*"));
    if (this.#o.budgets.has("*")) for (const tenant of counts.used.keys()) tenants.add(tenant);
    const resetsAt = nextUtcMidnight(now);
    return [...tenants].map((tenant) => ({
      tenant,
      budget: this.budgetOf(tenant)!,
      used: usedOn(counts, tenant, now),
      resetsAt,
    }));
  }

  /** Reads today's counts now (one HGETALL). Never rejects: a failed read keeps the last counts. */
  refresh(): Promise<void> {
    return this.#read.refresh();
  }
}

/** The tenant's count, when it was read today: counts read on an earlier day do not hold against today's budget. */
function usedOn(counts: { used: Map<string, number>; day: string }, tenant: string, now: number): number {
  return counts.day === utcDay(now) ? (counts.used.get(tenant) ?? 0) : 0;
}
