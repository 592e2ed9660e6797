import type { Redis } from "ioredis";
import type { RedisKeys } from "@corral/shared";

// KEYS[1] the tenant's queued set, KEYS[2] its "found full" marker.
// ARGV: cap, id, created_at, record key prefix, now (ms), grace (ms), full marker ttl (ms).
// Entries leave the set lazily: only when the set is at the cap are the oldest entries
// checked, and those whose record is no longer queued (or is gone past the grace period,
// which covers a record being written right now) are dropped.
const ADMIT_SCRIPT = `
local cap = tonumber(ARGV[1])
local count = redis.call("ZCARD", KEYS[1])
if count >= cap then
  if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
  local entries = redis.call("ZRANGE", KEYS[1], 0, -1, "WITHSCORES")
  local now, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
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
      if count < cap then break end
    end
  end
  if count >= cap then
    redis.call("SET", KEYS[2], "1", "PX", ARGV[7])
    return 0
  end
end
redis.call("ZADD", KEYS[1], ARGV[3], ARGV[2])
redis.call("DEL", KEYS[2])
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
   * Reserves a place for job `id`; false when the tenant already has `max` queued jobs.
   * `createdAt` (ms) is the entry's score and the "now" of the grace period.
   */
  async admit(tenant: string, id: string, createdAt: number): Promise<boolean> {
    const admitted = await this.#redis.eval(
      ADMIT_SCRIPT,
      2,
      this.#keys.tenantQueued(tenant),
      this.#keys.tenantQueuedFull(tenant),
      this.max,
      id,
      createdAt,
      this.#keys.job(""),
      createdAt,
      this.#graceMs,
      this.#fullRecheckMs,
    );
    return admitted === 1;
  }

  /** Gives the place of job `id` back (it was cancelled, or never made it into a lane). */
  async release(tenant: string, id: string): Promise<void> {
    await this.#redis.multi().zrem(this.#keys.tenantQueued(tenant), id).del(this.#keys.tenantQueuedFull(tenant)).exec();
  }
}
