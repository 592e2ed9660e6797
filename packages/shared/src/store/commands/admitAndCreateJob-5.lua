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
    ARGV[4] the record (JSON)
    ARGV[5] lane ("" when the caller registered it recently)

  Output:
    1 admitted, 0 full (the set is at the cap and was found full lately), -2 the set is at
    the cap and was not checked lately (nothing written: the caller prunes it with
    pruneQueued and tries again), -1 the record exists (nothing written).

  Entries leave the set lazily: only a set at the cap is pruned (pruneQueued), so the
  common path is one ZCARD and one ZADD. The "found full" marker needs no DEL here: it
  only exists while the set is at the cap (a release deletes it), and then admission
  returns 0.
]]
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[1]) then
  if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
  return -2
end
if not redis.call("SET", KEYS[3], ARGV[4], "NX") then return -1 end
redis.call("ZADD", KEYS[1], ARGV[3], ARGV[2])
redis.call("ZADD", KEYS[4], ARGV[3], ARGV[2])
if ARGV[5] ~= "" then redis.call("SADD", KEYS[5], ARGV[5]) end
return 1
