--[[
  A submit's writes before its BullMQ add, in one script: the tenant's queued limits (jobs
  and bytes), and when admitted, the set entry, the job's bytes, the job's record (SET NX),
  its place in the tenant's job list and its lane's registration.

  Input:
    KEYS[1] the tenant's queued set (RedisKeys.tenantQueued)
    KEYS[2] its "found full" marker (RedisKeys.tenantQueuedFull)
    KEYS[3] the job record (RedisKeys.job)
    KEYS[4] the tenant's job index (RedisKeys.tenantJobs)
    KEYS[5] the lanes set (RedisKeys.lanes)
    KEYS[6] the tenant's queued bytes (RedisKeys.tenantQueuedBytes): job id → bytes, and
            the field ":total"

    ARGV[1] cap (jobs)
    ARGV[2] job id
    ARGV[3] created_at (the entry's score)
    ARGV[4] the record (JSON)
    ARGV[5] lane ("" when the caller registered it recently)
    ARGV[6] byte limit (0: none, and the job's bytes are not tracked)
    ARGV[7] the job's bytes (its record and payload as stored)

  Output:
    1 admitted, 0 full (the set is at the cap and was found full lately), 2 over the byte
    limit (and found so lately), -2 at a limit and not checked lately (nothing written:
    the caller prunes with pruneQueued and tries again), -1 the record exists (nothing
    written).

  Entries leave the set lazily: only a set at a limit is pruned (pruneQueued), so the
  common path is one ZCARD and one ZADD (and with a byte limit one HINCRBY and one HSET). The "found full" marker needs no DEL here: it only exists while the set is at
  a limit (a release deletes it), and then admission refuses.
]]
local limit = tonumber(ARGV[6])
local bytes = tonumber(ARGV[7])
local over = 0
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[1]) then
  over = 1
elseif limit > 0 and redis.call("HINCRBY", KEYS[6], ":total", bytes) > limit then
  -- Counted first (one command fewer on the common path), taken back when over.
  redis.call("HINCRBY", KEYS[6], ":total", -bytes)
  over = 2
end
if over > 0 then
  if redis.call("EXISTS", KEYS[2]) == 1 then return over == 1 and 0 or 2 end
  return -2
end
if not redis.call("SET", KEYS[3], ARGV[4], "NX") then
  if limit > 0 then redis.call("HINCRBY", KEYS[6], ":total", -bytes) end
  return -1
end
redis.call("ZADD", KEYS[1], ARGV[3], ARGV[2])
if limit > 0 then redis.call("HSET", KEYS[6], ARGV[2], bytes) end
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[2])
if ARGV[5] ~= "" then redis.call("SADD", KEYS[5], ARGV[5]) end
return 1
