import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { fairShareFactors, fairShareLevel, readUsage, type RedisKeys } from "@corral/shared";

export interface FairShareOptions {
  redis: Redis;
  keys: RedisKeys;
  /** Configured shares (`CORRAL_TENANT_SHARES`); a tenant not named has 1. */
  shares: ReadonlyMap<string, number>;
  /** Every tenant with an API key, so that idle tenants count in the total of shares. */
  tenants: readonly string[];
  /** Most levels a job is pushed back (`CORRAL_FAIR_SHARE_WEIGHT`); 0 turns fair share off. */
  weight: number;
  halfLifeMs: number;
  /** How long read usage is used before it is read again. @defaultValue 5000 */
  refreshMs?: number;
  logger: Logger;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/**
 * Each tenant's fair-share factor, from the usage workers charge (see `fairShareFactors`
 * in @corral/shared), read at most every `refreshMs` in the background: a submit never
 * waits on it and costs no Redis command of its own.
 */
export class FairShare {
  readonly #o: Required<FairShareOptions>;
  #factors = new Map<string, number>();
  /** The highest factor as last read (1 while some tenant used nothing). */
  #best = 1;
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | null = null;

  constructor(options: FairShareOptions) {
    this.#o = { refreshMs: 5000, clock: Date.now, ...options };
  }

  /** Whether jobs' priorities follow fair share at all (a weight above 0). */
  get enabled(): boolean {
    return this.#o.weight > 0;
  }

  /**
   * The level (1–100) a job of `tenant` asking for `clientLevel` gets within its band, from
   * the factors as last read; starts a read in the background when they are stale.
   */
  level(tenant: string, clientLevel: number): number {
    if (!this.enabled) return clientLevel;
    if (this.#stale()) void this.refresh();
    // Relative to the tenant that deserves the most: its jobs keep their level, and a lone
    // tenant's are not all pushed back (which would only clamp its high levels to 100).
    return fairShareLevel(clientLevel, this.factor(tenant) / this.#best, this.#o.weight);
  }

  /** The tenant's configured share (`CORRAL_TENANT_SHARES`; 1 when not named). */
  shareOf(tenant: string): number {
    return this.#o.shares.get(tenant) ?? 1;
  }

  /** The tenant's factor as last read: 1 when it used nothing (or nothing was read yet). */
  factor(tenant: string): number {
    return this.#factors.get(tenant) ?? 1;
  }

  /** Every tenant's factor as last read. */
  get factors(): ReadonlyMap<string, number> {
    return this.#factors;
  }

  /** Every tenant's factor, read again first when the last read is older than `refreshMs`. */
  async current(): Promise<ReadonlyMap<string, number>> {
    if (this.#stale()) await this.refresh();
    return this.#factors;
  }

  /** Whether the last read is older than `refreshMs`. */
  #stale(): boolean {
    return this.#o.clock() - this.#readAt >= this.#o.refreshMs;
  }

  /** Reads the usage now (one HGETALL). Never rejects: a failed read keeps the factors. */
  refresh(): Promise<void> {
    this.#reading ??= (async () => {
      const now = this.#o.clock();
      this.#readAt = now;
      try {
        const usage = await readUsage(this.#o.redis, this.#o.keys, { now, halfLifeMs: this.#o.halfLifeMs });
        const factors = fairShareFactors(usage, this.#o.shares, this.#o.tenants);
        this.#factors = factors;
        this.#best = factors.size === 0 ? 1 : Math.max(...factors.values());
      } catch (error) {
        this.#o.logger.warn({ err: error }, "could not read tenant usage; fair share keeps the last factors");
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }
}
