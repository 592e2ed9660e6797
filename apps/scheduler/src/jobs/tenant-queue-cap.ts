import type { Redis } from "ioredis";
import type { JobRecord, RedisKeys } from "@corral/shared";

// KEYS[1] the tenant's queued set, KEYS[2] its "found full" marker.
// ARGV: cap, id, created_at, record key prefix, now (ms), grace (ms), full marker ttl (ms).
// Entries leave the set lazily: only when the set is at the cap are the oldest entries
// checked, a page of 128 at a time, and those whose record is no longer queued (or is gone
// past the grace period, which covers a record being written right now) are dropped. A
// whole page is pruned at once, so a tenant at the cap pays for the scan once per page
// of jobs that left, not on every submit. Returns 0 from the script when the tenant is
// full; falls through otherwise.
const ADMISSION = `
local cap = tonumber(ARGV[1])
local count = redis.call("ZCARD", KEYS[1])
if count >= cap then
  if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
  local now, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
  local page, start = 128, 0
  while count >= cap do
    local entries = redis.call("ZRANGE", KEYS[1], start, start + page - 1, "WITHSCORES")
    if #entries == 0 then break end
    local kept = 0
    for i = 1, #entries, 2 do
      local id, score = entries[i], tonumber(entries[i + 1])
      local raw = redis.call("GET", ARGV[4] .. id)
      local gone
      if raw then
        local ok, record = pcall(cjson.decode, raw)
        gone = (not ok) or record.status ~= "queued"
      else
        gone = score < now - grace
      end
      if gone then
        redis.call("ZREM", KEYS[1], id)
        count = count - 1
      else
        kept = kept + 1
      end
    end
    start = start + kept
  end
  if count >= cap then
    redis.call("SET", KEYS[2], "1", "PX", ARGV[7])
    return 0
  end
end
`;

// Admission, and when admitted: the set entry, the job's record (SET NX), its place in
// the tenant's job list and its lane's registration: one script for all of a submit's
// writes before the BullMQ add. KEYS[3] record, KEYS[4] the tenant's job index, KEYS[5] the lanes
// set; ARGV[8] record JSON, ARGV[9] lane ("" when the caller registered it recently).
// Returns 1, 0 (full) or -1 (the record exists: nothing written). The "found full" marker
// needs no DEL here: it only exists while the set is at the cap (a release deletes it),
// and then admission returned 0.
const ADMIT_AND_CREATE_SCRIPT = `${ADMISSION}
if not redis.call("SET", KEYS[3], ARGV[8], "NX") then return -1 end
redis.call("ZADD", KEYS[1], ARGV[3], ARGV[2])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[2])
if ARGV[9] ~= "" then redis.call("SADD", KEYS[5], ARGV[9]) end
return 1
`;

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
   * Redis) would then let the add run before the record exists.
   */
  async admitAndCreate(record: JobRecord, lane: string | null): Promise<"admitted" | "full" | "exists"> {
    const result = await this.#redis.eval(
      ADMIT_AND_CREATE_SCRIPT,
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
