--[[
  Admits a batch ingest chunk's jobs against their tenant's queued limits (jobs and
  bytes), in order, as far as they fit: each admitted job gets its set entry, its bytes
  and its record (not in the tenant's job list). A job whose record exists already (a
  resumed ingest queued it before) counts as admitted and is not charged again.

  Input:
    KEYS[1] the tenant's queued set (RedisKeys.tenantQueued)
    KEYS[2] its "found full" marker (RedisKeys.tenantQueuedFull)
    KEYS[3] the tenant's queued bytes (RedisKeys.tenantQueuedBytes)
    KEYS[4..n] the job records (RedisKeys.job), in ARGV's order; n is passed with the call

    ARGV[1] cap (jobs)
    ARGV[2] byte limit (0: none, and bytes are not tracked)
    ARGV[3..] the jobs' ids, then their scores (created_at), then their bytes, then their
              records (JSON), n - 3 of each

  Output:
    { jobs admitted (a prefix), 1 all admitted | 0 stopped at the cap | 2 stopped at the
    byte limit | -2 stopped at a limit not checked lately (prune, then call again with the
    rest) }
]]
local m = #KEYS - 3
local cap, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = redis.call("ZCARD", KEYS[1])
local held = 0
if limit > 0 then held = tonumber(redis.call("HGET", KEYS[3], ":total") or "0") end
local admitted, stop = 0, 0
for i = 1, m do
  if redis.call("EXISTS", KEYS[3 + i]) == 0 then
    local id, bytes = ARGV[2 + i], tonumber(ARGV[2 + 2 * m + i])
    if count >= cap then
      stop = 1
    elseif limit > 0 and held + bytes > limit then
      stop = 2
    end
    if stop > 0 then break end
    redis.call("SET", KEYS[3 + i], ARGV[2 + 3 * m + i])
    redis.call("ZADD", KEYS[1], ARGV[2 + m + i], id)
    count = count + 1
    if limit > 0 then
      redis.call("HSET", KEYS[3], id, bytes)
      held = held + bytes
    end
  end
  admitted = admitted + 1
end
if limit > 0 and held > 0 then redis.call("HSET", KEYS[3], ":total", held) end
if stop == 0 then return { admitted, 1 } end
if redis.call("EXISTS", KEYS[2]) == 1 then return { admitted, stop == 1 and 0 or 2 } end
return { admitted, -2 }
