--[[
  The slots' sweep, for one tenant with parked jobs: drops expired places and pops one
  parked job for each (while under the limit); forgets the tenant when none is left
  parked. Places freed by a leave were promoted into already, and a promoted job holds no
  place until it runs, so only expired places count here.

  Input:
    KEYS[1] the tenant's active set (RedisKeys.tenantActive)
    KEYS[2] the tenant's parked list (RedisKeys.tenantParked)
    KEYS[3] the parked tenants' limits (RedisKeys.parkedTenants)

    ARGV[1] now (ms)
    ARGV[2] tenant

  Output:
    the popped entries ("<lane>\t<job id>"), possibly none.
]]
local max = tonumber(redis.call("HGET", KEYS[3], ARGV[2]))
if not max then return {} end
local out = {}
local expired = redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[1])
local n = math.min(expired, max - redis.call("ZCARD", KEYS[1]))
if n > 0 then out = redis.call("LPOP", KEYS[2], n) or {} end
if redis.call("LLEN", KEYS[2]) == 0 then redis.call("HDEL", KEYS[3], ARGV[2]) end
return out
