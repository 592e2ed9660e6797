import type { Redis } from "ioredis";
import { luaScript, runCommand, type JobRecord, type RedisKeys } from "@corral/shared";

export interface TenantQueueCapOptions {
  redis: Redis;
  keys: RedisKeys;
  /** Most queued jobs per tenant. */
  max: number;
  /**
   * How long a set entry without a record is kept (its record may be being written).
   * @defaultValue 60000
   */
  graceMs?: number;
  /**
   * How long a full set is not rescanned while clients keep retrying.
   * @defaultValue 1000
   */
  fullRecheckMs?: number;
}

/** What one admission said; "unchecked": the set is at the cap and was not pruned lately (nothing written). */
export type Admission = "admitted" | "full" | "exists" | "unchecked";

/** Members of the queued set one prune script checks. */
const PRUNE_PAGE = 128;

/**
 * The per-tenant cap on queued jobs. Each admitted job id goes into a per-tenant sorted
 * set; entries whose record has left `queued` are pruned lazily, only when the set is at
 * the cap. The common path is one script (`admitAndCreateJob-5.lua`): one ZCARD and one
 * ZADD. At the cap, the oldest entries are checked a page of 128 at a time
 * (`pruneQueued.lua`, with the page's records passed as KEYS), and those whose record is
 * no longer queued (or is gone past the grace period, which covers a record being
 * written right now) are dropped. A whole page is pruned at once, so a tenant at the cap
 * pays for the scan once per page of jobs that left, not on every submit; a set still
 * full after a scan is marked so, and not rescanned for `fullRecheckMs`.
 */
export class TenantQueueCap {
  readonly max: number;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #graceMs: number;
  readonly #fullRecheckMs: number;

  constructor(options: TenantQueueCapOptions) {
    if (!Number.isInteger(options.max) || options.max < 1) throw new RangeError("max must be a positive integer");
    this.max = options.max;
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#graceMs = options.graceMs ?? 60_000;
    this.#fullRecheckMs = options.fullRecheckMs ?? 1000;
  }

  /**
   * Reserves a place for job `record` ("full" when the tenant already has `max` queued
   * jobs; the record's created_at is the entry's score and the "now" of the grace period)
   * and, when admitted, writes the record (as `JobRecords.create` would: SET NX and the
   * tenant's job index) and adds `lane` to the lanes set (unless `lane` is null). At the
   * cap, prunes the set and tries once more. "exists" when a record with that id is
   * already there (nothing is written).
   */
  async admitAndCreate(record: JobRecord, lane: string | null): Promise<"admitted" | "full" | "exists"> {
    const first = await this.admit(record, lane);
    if (first !== "unchecked") return first;
    await this.prune(record.tenant, record.created_at);
    const second = await this.admit(record, lane);
    return second === "unchecked" ? "full" : second;
  }

  /**
   * One admission script, as {@link admitAndCreate} but without pruning: "unchecked" when
   * the set is at the cap and was not pruned lately (nothing is written; {@link prune}, then
   * try again).
   *
   * The script goes out as EVAL (Redis caches it by hash), never as EVALSHA: a caller may
   * pipeline the BullMQ add right behind it, and an EVALSHA answered NOSCRIPT (a restarted
   * Redis) would then let the add run before the record exists (ioredis resends the script
   * as EVAL, but only after the add went out).
   */
  async admit(record: JobRecord, lane: string | null): Promise<Admission> {
    const result = await this.#redis.eval(
      luaScript("admitAndCreateJob").lua,
      5,
      this.#keys.tenantQueued(record.tenant),
      this.#keys.tenantQueuedFull(record.tenant),
      this.#keys.job(record.id),
      this.#keys.tenantJobs(record.tenant),
      this.#keys.lanes,
      this.max,
      record.id,
      record.created_at,
      JSON.stringify(record),
      lane ?? "",
    );
    return result === 1 ? "admitted" : result === 0 ? "full" : result === -2 ? "unchecked" : "exists";
  }

  /**
   * Drops the entries of the tenant's queued set whose jobs left `queued`, oldest first, a
   * page at a time, until the set is under the cap or every entry was checked (the set is
   * then marked full). `now` is the "now" of the grace period. Each page is one atomic
   * script over the page's records; admission stays atomic on its own, so the cap holds
   * whatever runs between the pages.
   */
  async prune(tenant: string, now: number): Promise<void> {
    const queued = this.#keys.tenantQueued(tenant);
    let start = 0;
    for (;;) {
      const entries = await this.#redis.zrange(queued, start, start + PRUNE_PAGE - 1, "WITHSCORES");
      if (entries.length === 0) return;
      const ids = entries.filter((_, i) => i % 2 === 0);
      const scores = entries.filter((_, i) => i % 2 === 1);
      const [count, kept] = await runCommand(
        this.#redis,
        "pruneQueued",
        [queued, this.#keys.tenantQueuedFull(tenant), ...ids.map((id) => this.#keys.job(id))],
        [this.max, now, this.#graceMs, this.#fullRecheckMs, start, ...ids, ...scores],
      );
      if (count < this.max || start + kept >= count) return;
      start += kept;
    }
  }

  /** Gives the place of job `id` back (it was cancelled, or never made it into a lane). */
  async release(tenant: string, id: string): Promise<void> {
    await this.#redis.multi().zrem(this.#keys.tenantQueued(tenant), id).del(this.#keys.tenantQueuedFull(tenant)).exec();
  }
}
