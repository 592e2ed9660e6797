--[[
  Frees a job's place among its tenant's running jobs and pops one parked job per free
  place, for the caller to promote.

  Input:
    KEYS[1] the tenant's active set (RedisKeys.tenantActive)
    KEYS[2] the tenant's parked list (RedisKeys.tenantParked)

    ARGV[1] now (ms)
    ARGV[2] max
    ARGV[3] job id

  Output:
    the popped entries ("<lane>\t<job id>"), possibly none.
]]
--- @include "includes/freePlaces"
redis.call("ZREM", KEYS[1], ARGV[3])
local free = freePlaces(ARGV[1], ARGV[2])
if free <= 0 then return {} end
return redis.call("LPOP", KEYS[2], free) or {}
