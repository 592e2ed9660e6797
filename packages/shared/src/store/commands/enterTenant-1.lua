--[[
  Takes a place for a job among its tenant's running jobs (max_active). A job already
  holding a place (a rerun after its slot died) keeps it.

  Input:
    KEYS[1] the tenant's active set (RedisKeys.tenantActive)

    ARGV[1] now (ms)
    ARGV[2] max
    ARGV[3] job id
    ARGV[4] when the place expires unless renewed (ms)

  Output:
    1 entered, 0 full.
]]
--- @include "includes/freePlaces"
local free = freePlaces(ARGV[1], ARGV[2])
if redis.call("ZSCORE", KEYS[1], ARGV[3]) or free > 0 then
  redis.call("ZADD", KEYS[1], ARGV[4], ARGV[3])
  return 1
end
return 0
