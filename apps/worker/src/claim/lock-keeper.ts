import type { Logger } from "pino";

/** Renews job locks, one lane's at a time (`LaneWorkers`, through BullMQ's batched `extendLocks`). */
export interface LaneLocks {
  /**
   * Sets each job's lock (`ids[i]`, held with `tokens[i]`) to expire `durationMs` from now,
   * when that token still holds it, in one call. Resolves with the ids it did not renew.
   */
  extendLocks(lane: string, ids: readonly string[], tokens: readonly string[], durationMs: number): Promise<string[]>;
}

/** Renews the places running jobs hold among their tenant's `max_active` (`TenantGate`). */
export interface TenantPlaces {
  /** Extends every place given, in one round trip. */
  renewPlaces(places: readonly { tenant: string; id: string }[]): Promise<void>;
}

export interface LockKeeperOptions {
  locks: LaneLocks;
  places: TenantPlaces;
  /** How long each renewal holds a lock (BullMQ's `lockDuration`). */
  lockDurationMs: number;
  /** How often every held lock and place is renewed. @defaultValue half the lock duration, at least 250 ms */
  renewEveryMs?: number;
  logger: Logger;
}

/** A job the keeper renews, from its claim until {@link HeldLock.release}. */
export interface HeldLock {
  /** The job holds a place among its tenant's running jobs: renewed with its lock until {@link dropPlace}. */
  holdPlace(tenant: string, id: string): void;
  dropPlace(): void;
  /** The slot is done with the job (finished, failed, released or parked): no longer renewed. Idempotent. */
  release(): void;
}

/** What one renewal did. */
export interface Renewal {
  /** Jobs whose lock it tried to renew, and places. */
  jobs: number;
  places: number;
  /** Jobs still held whose lock another token holds now, or that expired: another slot may run them too. */
  lost: string[];
}

interface Held {
  id: string;
  lane: string;
  token: string;
  log: Logger;
  place: { tenant: string; id: string } | null;
  /** Whether its lost lock was logged and reported (once per job). */
  warned: boolean;
  onLost?: () => void;
}

/**
 * Keeps every lock this slot holds, as BullMQ's `LockManager` does for a worker: one timer
 * for the slot, and every tick one batched renewal. That is one `extendLocks` call per
 * lane with held jobs (BullMQ's script: each lock still held with its token is extended
 * and its job taken out of the stalled set) and one pipeline of `ZADD XX` (one per
 * tenant) for the tenant places, all sent at once: one round trip, instead of one
 * `extendLock` and one `ZADD` per job.
 *
 * A lock found lost is logged and reported (`onLost`) once per job: the slot aborts the
 * job without writing a result, since another slot may run it now (the first final record
 * still wins, should a result be on its way already). A failed call is logged and tried
 * again next tick.
 */
export class LockKeeper {
  readonly #o: Required<LockKeeperOptions>;
  /** By lane and job id. */
  readonly #held = new Map<string, Held>();
  #timer: NodeJS.Timeout | null = null;
  #renewing: Promise<unknown> | null = null;
  #closed = false;

  constructor(options: LockKeeperOptions) {
    this.#o = { renewEveryMs: Math.max(250, Math.floor(options.lockDurationMs / 2)), ...options };
    if (this.#o.renewEveryMs >= this.#o.lockDurationMs)
      throw new RangeError(
        `renewEveryMs (${this.#o.renewEveryMs}) must be shorter than lockDurationMs (${this.#o.lockDurationMs})`,
      );
  }

  /**
   * Renews the job's lock (held with `token`) from the next tick on. `log`: the job's logger.
   * `onLost` is called (once) when a renewal finds the lock lost: the slot must stop the job.
   */
  hold(job: { id: string; lane: string; token: string; log: Logger; onLost?: () => void }): HeldLock {
    const held: Held = { ...job, place: null, warned: false };
    const key = heldKey(job.lane, job.id);
    this.#held.set(key, held);
    return {
      holdPlace: (tenant, id) => {
        held.place = { tenant, id };
      },
      dropPlace: () => {
        held.place = null;
      },
      release: () => {
        if (this.#held.get(key) === held) this.#held.delete(key);
      },
    };
  }

  /** Jobs whose locks are kept. */
  get size(): number {
    return this.#held.size;
  }

  /** Starts the timer: a renewal every `renewEveryMs`. */
  start(): void {
    if (this.#closed || this.#timer) return;
    this.#schedule();
  }

  /**
   * Renews every held lock and place now, in one round trip (no command when nothing is
   * held). Never rejects: failures are logged.
   */
  async renew(): Promise<Renewal> {
    const byLane = new Map<string, Held[]>();
    const places: { tenant: string; id: string }[] = [];
    const jobs = this.#held.size;
    for (const held of this.#held.values()) {
      let lane = byLane.get(held.lane);
      if (!lane) byLane.set(held.lane, (lane = []));
      lane.push(held);
      if (held.place) places.push(held.place);
    }
    const lost: string[] = [];
    const calls: Promise<void>[] = [...byLane].map(async ([lane, held]) => {
      const ids = held.map((job) => job.id);
      let failed: string[];
      try {
        failed = await this.#o.locks.extendLocks(
          lane,
          ids,
          held.map((job) => job.token),
          this.#o.lockDurationMs,
        );
      } catch (error) {
        this.#o.logger.warn({ err: error, lane, jobs: ids }, "extending the jobs' locks failed");
        return;
      }
      for (const id of failed) {
        const job = this.#held.get(heldKey(lane, id));
        // A job that finished meanwhile has no lock left to renew: not lost.
        if (!job || !held.includes(job)) continue;
        lost.push(id);
        if (job.warned) continue;
        job.warned = true;
        job.log.warn("lost the job's lock; stopping the job here (another worker may run it)");
        try {
          job.onLost?.();
        } catch (error) {
          job.log.error({ err: error }, "stopping a job whose lock was lost failed");
        }
      }
    });
    if (places.length > 0)
      calls.push(
        this.#o.places.renewPlaces(places).catch((error: unknown) => {
          this.#o.logger.warn({ err: error, places: places.length }, "could not renew the jobs' tenant places");
        }),
      );
    await Promise.all(calls);
    return { jobs, places: places.length, lost };
  }

  /** Stops the timer and waits for a renewal in flight. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#renewing;
  }

  /** One timer at a time, set again once a renewal is done (a slow call does not pile up renewals). */
  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#renewing = this.renew().finally(() => {
        this.#renewing = null;
        if (!this.#closed) this.#schedule();
      });
    }, this.#o.renewEveryMs);
    this.#timer.unref();
  }
}

const heldKey = (lane: string, id: string): string => `${lane}\t${id}`;
