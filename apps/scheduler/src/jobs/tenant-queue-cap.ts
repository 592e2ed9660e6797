import type { Redis } from "ioredis";
import { luaScript, runCommand, type JobRecord, type RedisKeys } from "@corral/shared";

export interface TenantQueueCapOptions {
  redis: Redis;
  keys: RedisKeys;
  /** Most queued jobs per tenant. */
  max: number;
  /**
   * Most bytes of queued work per tenant held in Redis (each job's record and payload as
   * stored); 0: no limit, and no bytes are tracked.
   * @defaultValue 0
   */
  maxBytes?: number;
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

/**
 * What one admission said: "full" at the job cap, "bytes" at the byte limit; "unchecked":
 * the set is at a limit and was not pruned lately (nothing written).
 */
export type Admission = "admitted" | "full" | "bytes" | "exists" | "unchecked";

/** What {@link TenantQueueCap.admitMany} did: how many of the jobs (a prefix) were admitted, and why it stopped. */
export interface ManyAdmission {
  admitted: number;
  /** "all", or the limit the next job did not fit: "full" (jobs) or "bytes". */
  stopped: "all" | "full" | "bytes";
}

/** A job to admit: its record and the bytes it holds in Redis. */
export interface Admittable {
  record: JobRecord;
  bytes: number;
}

const ADMISSIONS = new Map<number, Admission>([
  [1, "admitted"],
  [0, "full"],
  [2, "bytes"],
  [-2, "unchecked"],
  [-1, "exists"],
]);

/** Members of the queued set one prune script checks. */
const PRUNE_PAGE = 128;

/**
 * The per-tenant limits on queued work: jobs (the cap) and bytes. Each admitted job id goes
 * into a per-tenant sorted set, and with a byte limit its bytes into a per-tenant hash
 * with their sum; entries whose record has left `queued` are pruned lazily, only when the set is at
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
  readonly maxBytes: number;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #graceMs: number;
  readonly #fullRecheckMs: number;

  constructor(options: TenantQueueCapOptions) {
    if (!Number.isInteger(options.max) || options.max < 1) throw new RangeError("max must be a positive integer");
    this.max = options.max;
    this.maxBytes = options.maxBytes ?? 0;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 0)
      throw new RangeError("maxBytes must be a non-negative integer");
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
  async admitAndCreate(
    record: JobRecord,
    lane: string | null,
    bytes = 0,
  ): Promise<"admitted" | "full" | "bytes" | "exists"> {
    const first = await this.admit(record, lane, bytes);
    if (first !== "unchecked") return first;
    await this.prune(record.tenant, record.created_at, bytes);
    const second = await this.admit(record, lane, bytes);
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
  async admit(record: JobRecord, lane: string | null, bytes = 0): Promise<Admission> {
    const result = await this.#redis.eval(
      luaScript("admitAndCreateJob").lua,
      6,
      this.#keys.tenantQueued(record.tenant),
      this.#keys.tenantQueuedFull(record.tenant),
      this.#keys.job(record.id),
      this.#keys.tenantJobs(record.tenant),
      this.#keys.lanes,
      this.#keys.tenantQueuedBytes(record.tenant),
      this.max,
      record.id,
      record.created_at,
      JSON.stringify(record),
      lane ?? "",
      this.maxBytes,
      bytes,
    );
    return ADMISSIONS.get(result as number) ?? "exists";
  }

  /**
   * Admits a batch ingest chunk's jobs in order, as many as fit the tenant's limits (all of
   * one tenant), writing their records (not in the tenant's job list); a job whose record
   * exists already counts as admitted. At a limit not checked lately, prunes the set and
   * goes on once.
   */
  async admitMany(tenant: string, jobs: readonly Admittable[], now: number): Promise<ManyAdmission> {
    let admitted = 0;
    for (let pruned = false; ; pruned = true) {
      const rest = jobs.slice(admitted);
      if (rest.length === 0) return { admitted, stopped: "all" };
      const [n, code] = await runCommand(
        this.#redis,
        "admitJobs",
        [
          this.#keys.tenantQueued(tenant),
          this.#keys.tenantQueuedFull(tenant),
          this.#keys.tenantQueuedBytes(tenant),
          ...rest.map((job) => this.#keys.job(job.record.id)),
        ],
        [
          this.max,
          this.maxBytes,
          ...rest.map((job) => job.record.id),
          ...rest.map((job) => job.record.created_at),
          ...rest.map((job) => job.bytes),
          ...rest.map((job) => JSON.stringify(job.record)),
        ],
      );
      admitted += n;
      if (code === 1) return { admitted, stopped: "all" };
      if (code === 0 || (code === -2 && pruned)) return { admitted, stopped: "full" };
      if (code === 2) return { admitted, stopped: "bytes" };
      await this.prune(tenant, now, jobs[admitted]?.bytes ?? 0);
    }
  }

  /**
   * Drops the entries of the tenant's queued set whose jobs left `queued`, oldest first, a
   * page at a time, until the set is under the cap or every entry was checked (the set is
   * then marked full). `now` is the "now" of the grace period. Each page is one atomic
   * script over the page's records; admission stays atomic on its own, so the cap holds
   * whatever runs between the pages.
   */
  async prune(tenant: string, now: number, bytes = 0): Promise<void> {
    const queued = this.#keys.tenantQueued(tenant);
    let start = 0;
    for (;;) {
      const entries = await this.#redis.zrange(queued, start, start + PRUNE_PAGE - 1, "WITHSCORES");
      if (entries.length === 0) return;
      const ids = entries.filter((_, i) => i % 2 === 0);
      const scores = entries.filter((_, i) => i % 2 === 1);
      const [count, kept, held] = await runCommand(
        this.#redis,
        "pruneQueued",
        [
          queued,
          this.#keys.tenantQueuedFull(tenant),
          this.#keys.tenantQueuedBytes(tenant),
          ...ids.map((id) => this.#keys.job(id)),
        ],
        [this.max, now, this.#graceMs, this.#fullRecheckMs, start, this.maxBytes, bytes, ...ids, ...scores],
      );
      const fits = count < this.max && (this.maxBytes === 0 || held + bytes <= this.maxBytes);
      if (fits || start + kept >= count) return;
      start += kept;
    }
  }

  /** Gives the place of job `id` back, and its bytes (it was cancelled, or never made it into a lane). */
  async release(tenant: string, id: string): Promise<void> {
    await runCommand(
      this.#redis,
      "releaseQueued",
      [this.#keys.tenantQueued(tenant), this.#keys.tenantQueuedFull(tenant), this.#keys.tenantQueuedBytes(tenant)],
      [id],
    );
  }

  /** The bytes of queued work the tenant holds (as of the last prune: jobs that left are dropped lazily). */
  async heldBytes(tenant: string): Promise<number> {
    return Number((await this.#redis.hget(this.#keys.tenantQueuedBytes(tenant), ":total")) ?? 0);
  }
}
