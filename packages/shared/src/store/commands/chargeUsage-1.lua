--[[
  Decays each named tenant's usage to now and adds its charge, atomically (fair share).

  Input:
    KEYS[1] the usage hash (RedisKeys.usage): tenant -> "<ms decayed to at>:<at>"

    ARGV[1] now (ms)
    ARGV[2] half-life (ms)
    ARGV[3..] tenant and charge (ms) pairs

  Output:
    1
]]
local now = tonumber(ARGV[1])
local halfLife = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local tenant = ARGV[i]
  local charge = tonumber(ARGV[i + 1])
  local value = 0
  local current = redis.call('HGET', KEYS[1], tenant)
  if current then
    local sep = string.find(current, ':', 1, true)
    if sep then
      local v = tonumber(string.sub(current, 1, sep - 1)) or 0
      local at = tonumber(string.sub(current, sep + 1)) or now
      local age = now - at
      if age < 0 then age = 0 end
      value = v * math.pow(2, -age / halfLife)
    end
  end
  value = value + charge
  redis.call('HSET', KEYS[1], tenant, string.format('%.3f', value) .. ':' .. string.format('%.0f', now))
end
return 1
