--[[
  A submit's writes before its BullMQ add, in one script: the tenant's queued cap, and
  when admitted, the set entry, the job's record (SET NX), its place in the tenant's job
  list and its lane's registration.

  Input:
    KEYS[1] the tenant's queued set (RedisKeys.tenantQueued)
    KEYS[2] its "found full" marker (RedisKeys.tenantQueuedFull)
    KEYS[3] the job record (RedisKeys.job)
    KEYS[4] the tenant's job index (RedisKeys.tenantJobs)
    KEYS[5] the lanes set (RedisKeys.lanes)

    ARGV[1] cap
    ARGV[2] job id
    ARGV[3] created_at (the entry's score)
    ARGV[4] job record key prefix (RedisKeys.job(""))
    ARGV[5] now (ms)
    ARGV[6] grace (ms)
    ARGV[7] "found full" marker TTL (ms)
    ARGV[8] the record (JSON)
    ARGV[9] lane ("" when the caller registered it recently)

  Output:
    1 admitted, 0 full, -1 the record exists (nothing written).

  Entries leave the set lazily: only when the set is at the cap are the oldest entries
  checked, a page of 128 at a time, and those whose record is no longer queued (or is gone
  past the grace period, which covers a record being written right now) are dropped. A
  whole page is pruned at once, so a tenant at the cap pays for the scan once per page of
  jobs that left, not on every submit. The "found full" marker needs no DEL here: it only
  exists while the set is at the cap (a release deletes it), and then admission returns 0.

  Undeclared keys: the pruning reads the records of the set's members (ARGV[4] .. id),
  which no caller can know beforehand. They share the {prefix} hash tag with KEYS, so they
  live in the same Cluster slot; see tenant-queue-cap.ts for why this stays one script.
]]
local cap = tonumber(ARGV[1])
local count = redis.call("ZCARD", KEYS[1])
if count >= cap then
  if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
  local now, grace = tonumber(ARGV[5]), tonumber(ARGV[6])
  local page, start = 128, 0
  while count >= cap do
    local entries = redis.call("ZRANGE", KEYS[1], start, start + page - 1, "WITHSCORES")
    if #entries == 0 then break end
    local kept = 0
    for i = 1, #entries, 2 do
      local id, score = entries[i], tonumber(entries[i + 1])
      local raw = redis.call("GET", ARGV[4] .. id) -- undeclared key: see the header
      local gone
      if raw then
        local ok, record = pcall(cjson.decode, raw)
        gone = (not ok) or record.status ~= "queued"
      else
        gone = score < now - grace
      end
      if gone then
        redis.call("ZREM", KEYS[1], id)
        count = count - 1
      else
        kept = kept + 1
      end
    end
    start = start + kept
  end
  if count >= cap then
    redis.call("SET", KEYS[2], "1", "PX", ARGV[7])
    return 0
  end
end
if not redis.call("SET", KEYS[3], ARGV[8], "NX") then return -1 end
redis.call("ZADD", KEYS[1], ARGV[3], ARGV[2])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[2])
if ARGV[9] ~= "" then redis.call("SADD", KEYS[5], ARGV[9]) end
return 1
