import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { FairQueue, addTokensUsed, type RedisKeys } from "@corral/shared";

export interface UsageMeterOptions {
  /** Not owned. */
  redis: Redis;
  keys: RedisKeys;
  /** How often what was charged is written. @defaultValue 5000 */
  flushMs?: number;
  logger: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
}

/**
 * Settles tenants' fair-claim charges (the tokens a job used minus the estimate it was
 * charged at release) and counts the tokens they used, for daily token budgets: sums both
 * in memory and writes them every `flushMs` (the counters with one script,
 * `settleFair-2.lua`, today's tokens hash {@link RedisKeys.tokensUsed} with one MULTI, for
 * all tenants), so a job costs no Redis command of its own. A failed write keeps what it
 * held for the next one; what a crash loses is at most one interval's worth (its
 * estimates stay charged).
 */
export class UsageMeter {
  readonly #o: Required<UsageMeterOptions>;
  readonly #fair: FairQueue;
  #pending = new Map<string, number>();
  #tokens = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;

  constructor(options: UsageMeterOptions) {
    this.#o = { flushMs: 5000, now: Date.now, ...options };
    this.#fair = new FairQueue(options.redis, options.keys);
  }

  /**
   * Corrects the tenant's fair-claim counter by `tokens` (used minus charged; negative
   * when the job used less than its estimate), written with the next flush.
   */
  settle(tenant: string, tokens: number): void {
    if (this.#closed || !Number.isFinite(tokens) || tokens === 0) return;
    addTo(this.#pending, tenant, tokens);
    this.#schedule();
  }

  /** Adds `tokens` (prompt + completion) to what the tenant used today (written with the next flush). */
  countTokens(tenant: string, tokens: number): void {
    if (this.#closed || !(tokens > 0)) return;
    addTo(this.#tokens, tenant, tokens);
    this.#schedule();
  }

  /** Writes what was charged so far. Never rejects (a failure is logged, the charges kept). */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Writes what is left and stops charging. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#flushing;
    await this.flush();
  }

  async #write(): Promise<void> {
    const charges = this.#pending;
    const tokens = this.#tokens;
    this.#pending = new Map();
    this.#tokens = new Map();
    const { redis, keys, logger } = this.#o;
    const now = this.#o.now();
    // Each part is kept on its own failure, so neither is written twice.
    const [usage, counted] = await Promise.allSettled([
      this.#fair.settle(charges),
      addTokensUsed(redis, keys, tokens, { now }),
    ]);
    if (usage.status === "rejected") {
      logger.warn({ err: usage.reason, tenants: charges.size }, "could not settle fair-claim charges; will try again");
      for (const [tenant, ms] of charges) addTo(this.#pending, tenant, ms);
    }
    if (counted.status === "rejected") {
      logger.warn({ err: counted.reason, tenants: tokens.size }, "could not count tenant tokens; will try again");
      for (const [tenant, n] of tokens) addTo(this.#tokens, tenant, n);
    }
    if ((usage.status === "rejected" || counted.status === "rejected") && !this.#closed) this.#schedule();
  }

  /** A flush in `flushMs`, unless one is already due. */
  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.#o.flushMs).unref();
  }
}

function addTo(map: Map<string, number>, tenant: string, n: number): void {
  map.set(tenant, (map.get(tenant) ?? 0) + n);
}
