import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { chargeUsage, type RedisKeys } from "@corral/shared";

export interface UsageMeterOptions {
  /** Not owned. */
  redis: Redis;
  keys: RedisKeys;
  /** Half-life of usage (`CORRAL_FAIR_SHARE_HALF_LIFE`), the same as the schedulers'. */
  halfLifeMs: number;
  /** How often what was charged is written. @defaultValue 5000 */
  flushMs?: number;
  logger: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
}

/**
 * Charges tenants the slot time their jobs used, for fair share: sums charges in memory
 * and adds them to the usage hash ({@link RedisKeys.usage}) every `flushMs`, one script
 * for all tenants, so a job costs no Redis command of its own. A failed write keeps the
 * charges for the next one; what a crash loses is at most one interval's worth.
 */
export class UsageMeter {
  readonly #o: Required<UsageMeterOptions>;
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;

  constructor(options: UsageMeterOptions) {
    this.#o = { flushMs: 5000, now: Date.now, ...options };
  }

  /** Adds `ms` of slot time to the tenant's usage (written with the next flush). */
  charge(tenant: string, ms: number): void {
    if (this.#closed || !(ms > 0)) return;
    this.#pending.set(tenant, (this.#pending.get(tenant) ?? 0) + ms);
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
    if (this.#pending.size === 0) return;
    const charges = this.#pending;
    this.#pending = new Map();
    try {
      await chargeUsage(this.#o.redis, this.#o.keys, charges, { now: this.#o.now(), halfLifeMs: this.#o.halfLifeMs });
    } catch (error) {
      this.#o.logger.warn({ err: error, tenants: charges.size }, "could not write tenant usage; will try again");
      for (const [tenant, ms] of charges) this.#pending.set(tenant, (this.#pending.get(tenant) ?? 0) + ms);
      if (!this.#closed) this.#schedule();
    }
  }

  /** A flush in `flushMs`, unless one is already due. */
  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.#o.flushMs).unref();
  }
}
