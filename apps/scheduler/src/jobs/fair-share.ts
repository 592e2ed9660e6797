import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { fairShareFactors, fairShareLevel, readUsage, type RedisKeys } from "@corral/shared";
import { BackgroundRead } from "./background-read.js";

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
  /** Each tenant's factor, and the highest factor (1 while some tenant used nothing). */
  readonly #read: BackgroundRead<{ factors: Map<string, number>; best: number }>;

  constructor(options: FairShareOptions) {
    this.#o = { refreshMs: 5000, clock: Date.now, ...options };
    const { redis, keys, halfLifeMs, shares, tenants } = this.#o;
    this.#read = new BackgroundRead({
      read: async (now) => {
        const factors = fairShareFactors(await readUsage(redis, keys, { now, halfLifeMs }), shares, tenants);
        return { factors, best: factors.size === 0 ? 1 : Math.max(...factors.values()) };
      },
      initial: { factors: new Map(), best: 1 },
      refreshMs: this.#o.refreshMs,
      logger: this.#o.logger,
      failure: "could not read tenant usage; fair share keeps the last factors",
      clock: this.#o.clock,
    });
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
    const { factors, best } = this.#read.peek();
    // Relative to the tenant that deserves the most: its jobs keep their level, and a lone
    // tenant's are not all pushed back (which would only clamp its high levels to 100).
    return fairShareLevel(clientLevel, (factors.get(tenant) ?? 1) / best, this.#o.weight);
  }

  /** The tenant's configured share (`CORRAL_TENANT_SHARES`; 1 when not named). */
  shareOf(tenant: string): number {
    return this.#o.shares.get(tenant) ?? 1;
  }

  /** The tenant's factor as last read: 1 when it used nothing (or nothing was read yet). */
  factor(tenant: string): number {
    return this.#read.value.factors.get(tenant) ?? 1;
  }

  /** Every tenant's factor as last read. */
  get factors(): ReadonlyMap<string, number> {
    return this.#read.value.factors;
  }

  /** Every tenant's factor, read again first when the last read is older than `refreshMs`. */
  async current(): Promise<ReadonlyMap<string, number>> {
    return (await this.#read.current()).factors;
  }

  /** Reads the usage now (one HGETALL). Never rejects: a failed read keeps the factors. */
  refresh(): Promise<void> {
    return this.#read.refresh();
  }
}
