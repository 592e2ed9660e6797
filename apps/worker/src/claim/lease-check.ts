import type { Redis } from "ioredis";
import type { RedisKeys } from "@corral/shared";

export interface LeaseCheckOptions {
  redis: Redis;
  keys: RedisKeys;
  /**
   * The schedulers' interactive lease (`CORRAL_INTERACTIVE_LEASE_MS`): a job of an open
   * OpenAI request whose lease is missing this long after it was created is orphaned too
   * (its scheduler died between the submit and the first lease).
   * @defaultValue 10000
   */
  leaseMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** What the check needs of a running job. */
export interface LeasedJob {
  id: string;
  /** When the job was created (ms since epoch). */
  createdAt: number;
}

/**
 * Finds the running jobs of OpenAI requests whose scheduler's lease ran out (the
 * scheduler died, so nobody listens): one `ZMSCORE` over all of them, on the slot's sweep
 * tick, and nothing while the slot runs no such job. See `InteractiveLeases` in the
 * scheduler.
 */
export class LeaseCheck {
  readonly #o: Required<LeaseCheckOptions>;

  constructor(options: LeaseCheckOptions) {
    this.#o = { leaseMs: 10_000, now: Date.now, ...options };
  }

  /** The ids among `jobs` whose lease ran out, or that never got one within a lease of their creation. */
  async expired(jobs: readonly LeasedJob[]): Promise<string[]> {
    if (jobs.length === 0) return [];
    const scores = await this.#o.redis.zmscore(this.#o.keys.interactiveLeases, ...jobs.map((j) => j.id));
    const now = this.#o.now();
    return jobs
      .filter((job, i) => {
        const until = scores[i];
        return until === null || until === undefined ? now - job.createdAt > this.#o.leaseMs : Number(until) < now;
      })
      .map((job) => job.id);
  }
}
