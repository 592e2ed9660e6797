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
  4. the tenant is charged the job's estimated cost ÷ its weight (the entry's charge).

  Once per call, and at most every 250 ms, the lane notes its floor (the highest counter
  it has served, before the charge: the lane's virtual time) and when it last released a
  job; a floor so refreshed lags the true one by at most 250 ms of service.

  When the call released jobs and the lane still holds more, it adds a marker to the lane
  (as BullMQ's moveToActive does when more jobs wait), so one more slot blocked on the
  lane's markers wakes and takes the next: a burst held at once (which BullMQ marks once,
  as one delayed job) spreads over the idle slots one wake-up at a time, instead of
  waiting for their next timed look.

  A call that released jobs moves the lane's clock among the lanes with jobs (LaneIndex):
  to now when it still holds jobs (served now: the lanes that waited longest since they
  were last served come first to the slots that look), to "nothing held" when it holds
  none. Only lanes that were in the set are touched (`XX`).

  An entry whose job is no longer in the delayed set (cancelled, or released already) is
  dropped without a charge. The release is idempotent by job id: a job is moved at most
  once, so a slot that dies between the release and the take loses nothing; the job waits
  in the wait list, where the next claim on the lane takes it.

  Input:
    KEYS[1] the lane's held jobs (RedisKeys.fairJobs)
    KEYS[2] the lane's tenants (RedisKeys.fairTenants)
    KEYS[3] the counters hash (RedisKeys.fairCounters)
    KEYS[4] the lane's BullMQ delayed set
    KEYS[5] the lane's BullMQ wait list
    KEYS[6] the lane's BullMQ prioritized set
    KEYS[7] the lane's BullMQ marker
    KEYS[8] the lanes with jobs (RedisKeys.lanesWithJobs)

    ARGV[1] how many jobs to release
    ARGV[2] now (ms)
    ARGV[3] "1" to count the lane's ready jobs when none was released, "" not to
    ARGV[4] the lane's name

  Output:
    { ready, job id, tenant, charged (weighted tokens), ... }: how many jobs the lane has
    ready to take after the release (the jobs released; when none and ARGV[3] asks, its
    wait list, prioritized set and delayed jobs that are due, retries whose backoff ran
    out; else 0), then each job released.
]]
--- @include "includes/fairBands"
--- @include "includes/nothingHeld"
local want = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local released = {}
local count = 0
local tries = 0
-- The lane's floor and last release as stored, and the highest counter this call served.
local floor, served, top = nil, nil, nil

-- A tenant's next two entries: its head, and what follows it (nil when none).
local function heads(tenant)
  local found = redis.call("ZRANGEBYLEX", KEYS[1], "[" .. tenant .. "|", "+", "LIMIT", 0, 2)
  local prefix = tenant .. "|"
  local first, second = found[1], found[2]
  if first ~= nil and string.sub(first, 1, #prefix) ~= prefix then first = nil end
  if second ~= nil and string.sub(second, 1, #prefix) ~= prefix then second = nil end
  return first, second
end

while count < want and tries < 200 do
  tries = tries + 1
  local all = redis.call("ZRANGE", KEYS[2], 0, -1, "WITHSCORES")
  local tenants, best = {}, nil
  for m = 1, #all, 2 do
    local name, score = all[m], tonumber(all[m + 1])
    if string.byte(name, 1) ~= 124 then
      tenants[#tenants + 1] = { name = name, band = score }
      if best == nil or score < best then best = score end
    elseif name == "|floor" then
      floor = score
    elseif name == "|served" then
      served = score
    end
  end
  if best == nil then break end
  local candidates = {}
  for t = 1, #tenants do
    if tenants[t].band == best then candidates[#candidates + 1] = tenants[t].name end
  end
  -- The lowest counter among them (nothing to compare with one), then the older head.
  local counters = #candidates > 1 and redis.call("HMGET", KEYS[3], unpack(candidates)) or {}
  local pick = nil
  for c = 1, #candidates do
    local tenant = candidates[c]
    local counter = tonumber(counters[c]) or 0
    if pick == nil or counter <= pick.counter then
      local head, after = heads(tenant)
      if head == nil then
        -- Listed without entries (cannot happen while every change goes through these scripts).
        redis.call("ZREM", KEYS[2], tenant)
      else
        local at = #tenant + 2
        local seq = tonumber(string.sub(head, at + 5, at + 17))
        if pick == nil or counter < pick.counter or seq < pick.seq then
          local chargeEnd = string.find(head, "|", at + 19, true)
          pick = {
            tenant = tenant,
            member = head,
            after = after,
            counter = counter,
            seq = seq,
            charge = tonumber(string.sub(head, at + 19, chargeEnd - 1)) or 0,
            id = string.sub(head, chargeEnd + 1),
          }
        end
      end
    end
  end
  if pick == nil then break end
  redis.call("ZREM", KEYS[1], pick.member)
  if pick.after == nil then
    -- The tenant holds nothing more here; nor does the lane, when it was the last one.
    redis.call("ZREM", KEYS[2], pick.tenant)
    if #tenants == 1 then redis.call("ZREM", KEYS[2], "|since") end
  else
    local band = fairBand(tonumber(string.sub(pick.after, #pick.tenant + 2, #pick.tenant + 5)))
    if band ~= best then redis.call("ZADD", KEYS[2], "XX", band, pick.tenant) end
  end
  if redis.call("ZREM", KEYS[4], pick.id) == 1 then
    redis.call("LPUSH", KEYS[5], pick.id)
    local counter = tonumber(redis.call("HINCRBYFLOAT", KEYS[3], pick.tenant, pick.charge)) - pick.charge
    if top == nil or counter > top then top = counter end
    count = count + 1
    released[#released + 1] = pick.id
    released[#released + 1] = pick.tenant
    released[#released + 1] = tostring(pick.charge)
  end
end
if top ~= nil and (served == nil or now - served >= 250 or floor == nil) then
  if floor == nil or top > floor then floor = top end
  redis.call("ZADD", KEYS[2], floor, "|floor", now, "|served")
end
if count > 0 then
  if redis.call("ZCARD", KEYS[1]) > 0 then
    redis.call("ZADD", KEYS[7], 0, "0")
    redis.call("ZADD", KEYS[8], "XX", now, ARGV[4])
  else
    redis.call("ZADD", KEYS[8], "XX", NOTHING_HELD, ARGV[4])
  end
end
local ready = count
if count == 0 and ARGV[3] == "1" then
  -- BullMQ's delayed score is the due time (ms) × 2^12 + a counter.
  ready = redis.call("LLEN", KEYS[5]) + redis.call("ZCARD", KEYS[6])
    + redis.call("ZCOUNT", KEYS[4], 0, (now + 1) * 4096 - 1)
end
table.insert(released, 1, ready)
return released
