import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { RedisKeys } from "@corral/shared";

export interface InteractiveLeasesOptions {
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
  /**
   * How long a lease lasts; renewed every third of it.
   * @defaultValue 10000
   */
  leaseMs?: number;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/**
 * The scheduler's leases on the jobs of the OpenAI requests it is streaming or waiting on
 * (`{corral}:interactive-leases`, each job scored by its lease's end). While a request is
 * open its jobs' leases are renewed, all of them in one `ZADD` per tick; when the request
 * ends they are dropped. A scheduler that dies renews nothing, and a slot running such a
 * job cancels it once its lease ran out (`LeaseCheck` in the worker), instead of
 * generating for nobody. Native jobs never get a lease: they were accepted, and stay
 * fetchable by id.
 */
export class InteractiveLeases {
  readonly #o: Required<InteractiveLeasesOptions>;
  /** Held job ids → how many open requests hold each (one, in practice). */
  readonly #held = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #renewing: Promise<void> | null = null;
  #closed = false;

  constructor(options: InteractiveLeasesOptions) {
    this.#o = { leaseMs: 10_000, clock: Date.now, ...options };
    if (this.#o.leaseMs < 1000) throw new RangeError(`leaseMs must be at least 1000 (got ${this.#o.leaseMs})`);
  }

  get leaseMs(): number {
    return this.#o.leaseMs;
  }

  /** Takes the leases on `ids` now (one ZADD), and renews them until {@link release}. Throws when Redis fails. */
  async hold(ids: readonly string[]): Promise<void> {
    if (ids.length === 0 || this.#closed) return;
    for (const id of ids) this.#held.set(id, (this.#held.get(id) ?? 0) + 1);
    this.#schedule();
    await this.#o.redis.zadd(this.#o.keys.interactiveLeases, ...this.#entries(ids));
  }

  /** Stops renewing `ids` and drops their leases (one ZREM). Never throws. */
  release(ids: readonly string[]): void {
    const dropped: string[] = [];
    for (const id of ids) {
      const count = (this.#held.get(id) ?? 0) - 1;
      if (count > 0) this.#held.set(id, count);
      else if (this.#held.delete(id)) dropped.push(id);
    }
    if (dropped.length === 0) return;
    this.#o.redis.zrem(this.#o.keys.interactiveLeases, ...dropped).catch((error: unknown) => {
      // It runs out on its own; the job is final or cancelled by now anyway.
      this.#o.logger.debug({ err: error, jobs: dropped.length }, "dropping interactive leases failed");
    });
  }

  /** Stops renewing. The leases still held run out on their own. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#renewing;
  }

  #entries(ids: Iterable<string>): Array<string | number> {
    const until = this.#o.clock() + this.#o.leaseMs;
    const entries: Array<string | number> = [];
    for (const id of ids) entries.push(until, id);
    return entries;
  }

  /** The next renewal is timed once the last one is done, so a slow Redis never piles them up. */
  #schedule(): void {
    if (this.#timer || this.#renewing || this.#closed) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#renewing = this.#renew().finally(() => {
          this.#renewing = null;
          if (this.#held.size > 0) this.#schedule();
        });
      },
      Math.floor(this.#o.leaseMs / 3),
    );
    this.#timer.unref();
  }

  /**
   * One round trip: renews every held lease (one ZADD) and prunes leases that ran out a
   * lease ago (left by a scheduler that died; their slots have cancelled the jobs).
   */
  async #renew(): Promise<void> {
    const now = this.#o.clock();
    const pipeline = this.#o.redis.pipeline();
    if (this.#held.size > 0) pipeline.zadd(this.#o.keys.interactiveLeases, ...this.#entries(this.#held.keys()));
    pipeline.zremrangebyscore(this.#o.keys.interactiveLeases, "-inf", now - this.#o.leaseMs);
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error !== null);
      if (failed) throw failed[0];
    } catch (error) {
      this.#o.logger.warn({ err: error, jobs: this.#held.size }, "renewing interactive leases failed; trying again");
    }
  }
}
