--[[
  Settles fair-claim charges: when jobs end, their tenants' counters are corrected by the
  tokens they really used minus the estimate they were charged, each ÷ the tenant's
  weight. A tenant with no counter (never held a job) is skipped.

  Input:
    KEYS[1] the counters hash (RedisKeys.fairCounters)
    KEYS[2] the weights hash (RedisKeys.fairWeights)

    ARGV[1 + 2i], ARGV[2 + 2i] a tenant, and its correction in tokens (may be negative)

  Output:
    the number of tenants settled.
]]
local settled = 0
for i = 1, #ARGV, 2 do
  local tenant = ARGV[i]
  local counter = tonumber(redis.call("HGET", KEYS[1], tenant))
  if counter ~= nil then
    local weight = tonumber(redis.call("HGET", KEYS[2], tenant)) or 1
    if weight <= 0 then weight = 1 end
    redis.call("HSET", KEYS[1], tenant, counter + tonumber(ARGV[i + 1]) / weight)
    settled = settled + 1
  end
end
return settled
