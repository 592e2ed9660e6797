--[[
  Drops the expired places of a tenant's running jobs and returns how many of `max`
  places are free. Every script that includes it has the tenant's active set
  (RedisKeys.tenantActive) as KEYS[1].
]]
local function freePlaces(now, max)
  redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
  return tonumber(max) - redis.call("ZCARD", KEYS[1])
end
