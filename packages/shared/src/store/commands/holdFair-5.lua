--[[
  Holds jobs for fair claim: lists each one among its tenant's held jobs on the lane, and
  lifts the counter of a tenant that starts waiting there. The jobs themselves are already
  in the lane's BullMQ delayed set (added with the hold delay); releaseFair moves them to
  the lane's wait list one at a time.

  The lane's tenants set (RedisKeys.fairTenants) scores each waiting tenant with its
  earliest band (0 interactive, 1 native, 2 batch), so one read gives the waiting tenants
  and their bands. Its members that start with `|` (not a tenant character) are the
  lane's own: `|since` (when it started waiting, ms), `|served` (its last release, ms) and
  `|floor` (the highest counter its releases served: the lane's virtual time).

  Lift with credit: a tenant that starts waiting on the lane gets its virtual token counter
  raised to max(own, floor − credit). So a tenant that was idle overtakes the backlog by
  at most `credit` weighted tokens, cannot bank more by staying away, and tenants arriving
  one after another do not compound their credit (the floor is not a credited counter).
  On a lane that never released a job, a newcomer is lifted to the lowest counter waiting
  there, with no credit: nobody has been served ahead of it yet.

  The lane joins the lanes with jobs (LaneIndex), scored with when its held jobs started
  waiting: `ZADD LT now` sets a lane that had none held (absent, or scored "nothing held")
  to now and leaves the older clock of a lane already waiting.

  Input:
    KEYS[1] the lane's held jobs (RedisKeys.fairJobs)
    KEYS[2] the lane's tenants (RedisKeys.fairTenants)
    KEYS[3] the counters hash (RedisKeys.fairCounters)
    KEYS[4] the weights hash (RedisKeys.fairWeights)
    KEYS[5] the lanes with jobs (RedisKeys.lanesWithJobs)

    ARGV[1] now (ms)
    ARGV[2] credit (weighted tokens)
    ARGV[3] the lane's name
    ARGV[4 + 6i .. 9 + 6i] the i-th job: tenant, weight, priority (BullMQ level, 1-1100),
      its place in its tenant's order at that level (its creation time, ms), its charge
      (estimated tokens ÷ weight), job id

  Output:
    the number of jobs held.
]]
--- @include "includes/fairBands"
local now = ARGV[1]
local credit = tonumber(ARGV[2])
local held = 0
for i = 4, #ARGV, 6 do
  local tenant, weight, priority, seq = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local charge, id = ARGV[i + 4], ARGV[i + 5]
  -- Added (not only moved to an earlier band): the tenant starts waiting on this lane.
  if redis.call("ZADD", KEYS[2], "LT", fairBand(priority), tenant) == 1 then
    redis.call("ZADD", KEYS[2], "NX", now, "|since")
    local low = tonumber(redis.call("ZSCORE", KEYS[2], "|floor"))
    if low ~= nil then
      low = low - credit
    else
      -- The lane never released a job: nobody is ahead yet, so no credit either.
      local others = {}
      for _, name in ipairs(redis.call("ZRANGE", KEYS[2], 0, -1)) do
        if name ~= tenant and string.byte(name, 1) ~= 124 then others[#others + 1] = name end
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
  redis.call("ZADD", KEYS[1], 0, tenant .. "|" .. string.format("%04d|%013d|", priority, seq) .. charge .. "|" .. id)
  held = held + 1
end
if held > 0 then redis.call("ZADD", KEYS[5], "LT", now, ARGV[3]) end
return held
