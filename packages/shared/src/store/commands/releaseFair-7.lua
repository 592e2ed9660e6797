--[[
  Fair claim: releases the lane's next `n` held jobs into its BullMQ wait list, each one
  from the tenant fairness says is next, for the slot that calls it to take (getNextJob,
  or a fetch-next completion) at once. Per job:

  1. the earliest band with a job waiting (interactive, then native, then batch);
  2. in it, the tenant with the lowest weighted virtual token counter (VTC, Sheng et al.,
     OSDI 2024); ties go to the older head job;
  3. that tenant's next job (its most urgent level, then the oldest) is moved from the
     lane's delayed set to the back of its wait list, as BullMQ's promote does for a job
     without priority (without its event and marker: the caller takes it);
  4. the tenant is charged the job's estimated cost ÷ its weight; the lane's floor (the
     highest counter it has served, before the charge) and its last release are noted.

  An entry whose job is no longer in the delayed set (cancelled, or released already) is
  dropped without a charge. The release is idempotent by job id: a job is moved at most
  once, so a slot that dies between the release and the take loses nothing; the job waits
  in the wait list, where the next claim on the lane takes it.

  Input:
    KEYS[1] the lane's held jobs (RedisKeys.fairJobs)
    KEYS[2] the lane's backlog hash (RedisKeys.fairBacklog)
    KEYS[3] the counters hash (RedisKeys.fairCounters)
    KEYS[4] the weights hash (RedisKeys.fairWeights)
    KEYS[5] the lane's BullMQ delayed set
    KEYS[6] the lane's BullMQ wait list
    KEYS[7] the lane's BullMQ prioritized set

    ARGV[1] how many jobs to release
    ARGV[2] now (ms)

  Output:
    { ready, job id, tenant, charged (weighted tokens), ... }: how many jobs the lane has
    ready to take after the release (wait list, prioritized, and delayed ones that are due:
    retries whose backoff ran out), then each job released.
]]
--- @include "includes/fairBands"
local want = tonumber(ARGV[1])
local released = {}
local count = 0
local tries = 0

-- Removes an entry; `last`: its tenant is the only one with held jobs on the lane.
local function drop(tenant, member, priority, last)
  redis.call("ZREM", KEYS[1], member)
  if redis.call("HINCRBY", KEYS[2], tenant, -1) <= 0 then
    redis.call("HDEL", KEYS[2], tenant)
    -- The lane holds nothing any more.
    if last then return redis.call("HDEL", KEYS[2], "|since", "|b0", "|b1", "|b2") end
  end
  redis.call("HINCRBY", KEYS[2], "|b" .. fairBand(priority), -1)
end

while count < want and tries < 200 do
  tries = tries + 1
  local fields = redis.call("HGETALL", KEYS[2])
  local tenants = {}
  local floor = nil
  for f = 1, #fields, 2 do
    if string.byte(fields[f], 1) ~= 124 then
      if tonumber(fields[f + 1]) > 0 then tenants[#tenants + 1] = fields[f] end
    elseif fields[f] == "|floor" then
      floor = tonumber(fields[f + 1])
    end
  end
  if #tenants == 0 then break end
  local counters = redis.call("HMGET", KEYS[3], unpack(tenants))
  local best = nil
  for t = 1, #tenants do
    local tenant = tenants[t]
    local head = redis.call("ZRANGEBYLEX", KEYS[1], "[" .. tenant .. "|", "+", "LIMIT", 0, 1)[1]
    if head == nil or string.sub(head, 1, #tenant + 1) ~= tenant .. "|" then
      -- A count without entries (cannot happen while every change goes through these scripts).
      redis.call("HDEL", KEYS[2], tenant)
    else
      local at = #tenant + 2
      local priority = tonumber(string.sub(head, at, at + 3))
      local seq = tonumber(string.sub(head, at + 5, at + 17))
      local costEnd = string.find(head, "|", at + 19, true)
      local entry = {
        tenant = tenant,
        member = head,
        priority = priority,
        band = fairBand(priority),
        seq = seq,
        cost = tonumber(string.sub(head, at + 19, costEnd - 1)) or 0,
        id = string.sub(head, costEnd + 1),
        counter = tonumber(counters[t]) or 0,
      }
      if best == nil or entry.band < best.band
        or (entry.band == best.band and (entry.counter < best.counter
          or (entry.counter == best.counter and entry.seq < best.seq))) then
        best = entry
      end
    end
  end
  if best == nil then break end
  drop(best.tenant, best.member, best.priority, #tenants == 1)
  if redis.call("ZREM", KEYS[5], best.id) == 1 then
    redis.call("LPUSH", KEYS[6], best.id)
    local weight = tonumber(redis.call("HGET", KEYS[4], best.tenant)) or 1
    if weight <= 0 then weight = 1 end
    local charged = best.cost / weight
    redis.call("HSET", KEYS[3], best.tenant, best.counter + charged)
    if floor == nil or best.counter > floor then floor = best.counter end
    redis.call("HSET", KEYS[2], "|floor", floor, "|served", ARGV[2])
    count = count + 1
    released[#released + 1] = best.id
    released[#released + 1] = best.tenant
    released[#released + 1] = tostring(charged)
  end
end
-- BullMQ's delayed score is the due time (ms) × 2^12 + a counter.
local due = redis.call("ZCOUNT", KEYS[5], 0, (tonumber(ARGV[2]) + 1) * 4096 - 1)
table.insert(released, 1, redis.call("LLEN", KEYS[6]) + redis.call("ZCARD", KEYS[7]) + due)
return released
