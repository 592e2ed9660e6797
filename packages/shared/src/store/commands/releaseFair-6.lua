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
  4. the tenant is charged the job's estimated cost ÷ its weight (the entry's charge), and
     the lane notes its floor (the highest counter it has served, before the charge: the
     lane's virtual time) and when it last released a job.

  An entry whose job is no longer in the delayed set (cancelled, or released already) is
  dropped without a charge. The release is idempotent by job id: a job is moved at most
  once, so a slot that dies between the release and the take loses nothing; the job waits
  in the wait list, where the next claim on the lane takes it.

  Input:
    KEYS[1] the lane's held jobs (RedisKeys.fairJobs)
    KEYS[2] the lane's backlog hash (RedisKeys.fairBacklog)
    KEYS[3] the counters hash (RedisKeys.fairCounters)
    KEYS[4] the lane's BullMQ delayed set
    KEYS[5] the lane's BullMQ wait list
    KEYS[6] the lane's BullMQ prioritized set

    ARGV[1] how many jobs to release
    ARGV[2] now (ms)

  Output:
    { ready, job id, tenant, charged (weighted tokens), ... }: how many jobs the lane has
    ready to take after the release (at least the jobs released; when fewer than asked,
    its wait list, prioritized set and delayed jobs that are due, retries whose backoff
    ran out), then each job released.
]]
--- @include "includes/fairBands"
local want = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local released = {}
local count = 0
local tries = 0

while count < want and tries < 200 do
  tries = tries + 1
  local fields = redis.call("HGETALL", KEYS[2])
  -- The waiting tenants with their earliest band, and the lane's floor and last release.
  local bandOf, tenants, floor = {}, {}, nil
  local best = nil
  for f = 1, #fields, 2 do
    local name = fields[f]
    local bar = string.find(name, "|", 1, true)
    if bar == 1 then
      if name == "|floor" then floor = tonumber(fields[f + 1]) end
    elseif tonumber(fields[f + 1]) > 0 then
      local tenant = string.sub(name, 1, bar - 1)
      local band = tonumber(string.sub(name, bar + 1))
      if bandOf[tenant] == nil then tenants[#tenants + 1] = tenant end
      if bandOf[tenant] == nil or band < bandOf[tenant] then bandOf[tenant] = band end
      if best == nil or band < best then best = band end
    end
  end
  if best == nil then break end
  local candidates = {}
  for t = 1, #tenants do
    if bandOf[tenants[t]] == best then candidates[#candidates + 1] = tenants[t] end
  end
  -- The lowest counter among them (none to compare with one candidate), then the older head.
  local counters = #candidates > 1 and redis.call("HMGET", KEYS[3], unpack(candidates)) or {}
  local pick = nil
  for c = 1, #candidates do
    local tenant = candidates[c]
    local counter = tonumber(counters[c]) or 0
    local head = nil
    if pick == nil or counter <= pick.counter then
      head = redis.call("ZRANGEBYLEX", KEYS[1], "[" .. tenant .. "|", "+", "LIMIT", 0, 1)[1]
      if head ~= nil and string.sub(head, 1, #tenant + 1) ~= tenant .. "|" then head = nil end
    end
    if head ~= nil then
      local at = #tenant + 2
      local seq = tonumber(string.sub(head, at + 5, at + 17))
      if pick == nil or counter < pick.counter or seq < pick.seq then
        local chargeEnd = string.find(head, "|", at + 19, true)
        pick = {
          tenant = tenant,
          member = head,
          counter = counter,
          seq = seq,
          charge = tonumber(string.sub(head, at + 19, chargeEnd - 1)) or 0,
          id = string.sub(head, chargeEnd + 1),
        }
      end
    elseif #candidates == 1 or counter <= (pick and pick.counter or counter) then
      -- A count without entries (cannot happen while every change goes through these scripts).
      redis.call("HDEL", KEYS[2], tenant .. "|" .. best)
    end
  end
  if pick == nil then break end
  redis.call("ZREM", KEYS[1], pick.member)
  local field = pick.tenant .. "|" .. best
  if redis.call("HINCRBY", KEYS[2], field, -1) <= 0 then
    redis.call("HDEL", KEYS[2], field)
    if #tenants == 1 and redis.call("ZCARD", KEYS[1]) == 0 then
      -- The lane holds nothing any more.
      redis.call("HDEL", KEYS[2], "|since")
    end
  end
  if redis.call("ZREM", KEYS[4], pick.id) == 1 then
    redis.call("LPUSH", KEYS[5], pick.id)
    local counter = tonumber(redis.call("HINCRBYFLOAT", KEYS[3], pick.tenant, pick.charge)) - pick.charge
    if floor == nil or counter > floor then floor = counter end
    redis.call("HSET", KEYS[2], "|floor", floor, "|served", now)
    count = count + 1
    released[#released + 1] = pick.id
    released[#released + 1] = pick.tenant
    released[#released + 1] = tostring(pick.charge)
  end
end
local ready = count
if count < want then
  -- BullMQ's delayed score is the due time (ms) × 2^12 + a counter.
  ready = redis.call("LLEN", KEYS[5]) + redis.call("ZCARD", KEYS[6])
    + redis.call("ZCOUNT", KEYS[4], 0, (now + 1) * 4096 - 1)
end
table.insert(released, 1, ready)
return released
