--[[
  Holds jobs for fair claim: lists each one among its tenant's held jobs on the lane, and
  lifts the counter of a tenant that starts waiting there. The jobs themselves are already
  in the lane's BullMQ delayed set (added with the hold delay); releaseFair moves them to
  the lane's wait list one at a time.

  Lift with credit: a tenant with nothing held on the lane gets its virtual token counter
  raised to max(own, floor − credit). The floor is the lane's virtual time: the highest
  counter any release on the lane has served (it only grows). So a tenant that was idle
  overtakes the backlog by at most `credit` weighted tokens, cannot bank more by staying
  away, and tenants arriving one after another do not compound their credit. On a lane
  that never released a job, a newcomer is lifted to the lowest counter waiting there,
  with no credit: nobody has been served ahead of it yet.

  Input:
    KEYS[1] the lane's held jobs (RedisKeys.fairJobs)
    KEYS[2] the lane's backlog hash (RedisKeys.fairBacklog)
    KEYS[3] the counters hash (RedisKeys.fairCounters)
    KEYS[4] the weights hash (RedisKeys.fairWeights)

    ARGV[1] now (ms)
    ARGV[2] credit (weighted tokens)
    ARGV[3 + 6i .. 8 + 6i] the i-th job: tenant, weight, priority (BullMQ level, 1-1100),
      its place in its tenant's order at that level (its creation time, ms), estimated
      cost (tokens), job id

  Output:
    the number of jobs held.
]]
--- @include "includes/fairBands"
local now = ARGV[1]
local credit = tonumber(ARGV[2])
local held = 0
for i = 3, #ARGV, 6 do
  local tenant, weight, priority, seq = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local cost, id = ARGV[i + 4], ARGV[i + 5]
  if redis.call("HINCRBY", KEYS[2], tenant, 1) == 1 then
    -- The tenant starts waiting on this lane (and the lane, when it held nothing).
    redis.call("HSETNX", KEYS[2], "|since", now)
    -- Lift its counter.
    local floor = tonumber(redis.call("HGET", KEYS[2], "|floor"))
    local low = nil
    if floor ~= nil then
      low = floor - credit
    else
      -- The lane never released a job: nobody is ahead yet, so no credit either.
      local fields = redis.call("HGETALL", KEYS[2])
      local others = {}
      for f = 1, #fields, 2 do
        local name = fields[f]
        if name ~= tenant and string.byte(name, 1) ~= 124 and tonumber(fields[f + 1]) > 0 then
          others[#others + 1] = name
        end
      end
      if #others > 0 then
        local counters = redis.call("HMGET", KEYS[3], unpack(others))
        for o = 1, #others do
          local c = tonumber(counters[o]) or 0
          if low == nil or c < low then low = c end
        end
      end
    end
    local own = tonumber(redis.call("HGET", KEYS[3], tenant))
    local lifted = own or 0
    if low ~= nil and (own == nil or own < low) then lifted = low end
    if own == nil or lifted ~= own then redis.call("HSET", KEYS[3], tenant, lifted) end
    redis.call("HSET", KEYS[4], tenant, weight)
  end
  redis.call("ZADD", KEYS[1], 0, tenant .. "|" .. string.format("%04d|%013d|", priority, seq) .. cost .. "|" .. id)
  redis.call("HINCRBY", KEYS[2], "|b" .. fairBand(priority), 1)
  held = held + 1
end
return held
