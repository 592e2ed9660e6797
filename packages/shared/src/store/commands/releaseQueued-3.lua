--[[
  Gives a job's place in its tenant's queued limits back (it was cancelled, or never made
  it into a lane): its set entry and its bytes, and the "found full" marker.

  Input:
    KEYS[1] the tenant's queued set (RedisKeys.tenantQueued)
    KEYS[2] its "found full" marker (RedisKeys.tenantQueuedFull)
    KEYS[3] the tenant's queued bytes (RedisKeys.tenantQueuedBytes)

    ARGV[1] job id

  Output:
    1 when the job held a place, else 0.
]]
local removed = redis.call("ZREM", KEYS[1], ARGV[1])
local bytes = redis.call("HGET", KEYS[3], ARGV[1])
if bytes then
  redis.call("HDEL", KEYS[3], ARGV[1])
  redis.call("HINCRBY", KEYS[3], ":total", -tonumber(bytes))
end
redis.call("DEL", KEYS[2])
return removed
