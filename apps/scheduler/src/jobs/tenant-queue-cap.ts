import type { Redis } from "ioredis";
import { luaScript, type JobRecord, type RedisKeys } from "@corral/shared";

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

/**
 * The per-tenant cap on queued jobs. Each admitted job id goes into a per-tenant sorted
 * set; entries whose record has left `queued` are pruned lazily, in the same atomic
 * script, only when the set is at the cap. The common path is one ZCARD and one ZADD.
 * The script is `admitAndCreateJob-5.lua` in `@corral/shared`'s commands.
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
   * tenant's job index) and adds `lane` to the lanes set (unless `lane` is null), all in
   * one script. "exists" when a record with that id is already there (nothing is written).
   *
   * The script goes out as EVAL (Redis caches it by hash), never as EVALSHA: a caller may
   * pipeline the BullMQ add right behind it, and an EVALSHA answered NOSCRIPT (a restarted
   * Redis) would then let the add run before the record exists (ioredis resends the script
   * as EVAL, but only after the add went out).
   *
   * The script reads the records of the set's members while it prunes, keys no caller
   * knows beforehand (see its header). They share the key prefix's hash tag, so they are
   * in the same Cluster slot as its KEYS. Splitting the pruning out of the script would
   * put round trips between the admission and the pipelined add, where a worker could
   * claim the job before its record exists and drop it.
   */
  async admitAndCreate(record: JobRecord, lane: string | null): Promise<"admitted" | "full" | "exists"> {
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
      this.#keys.job(""),
      record.created_at,
      this.#graceMs,
      this.#fullRecheckMs,
      JSON.stringify(record),
      lane ?? "",
    );
    return result === 1 ? "admitted" : result === 0 ? "full" : "exists";
  }

  /** Gives the place of job `id` back (it was cancelled, or never made it into a lane). */
  async release(tenant: string, id: string): Promise<void> {
    await this.#redis.multi().zrem(this.#keys.tenantQueued(tenant), id).del(this.#keys.tenantQueuedFull(tenant)).exec();
  }
}
