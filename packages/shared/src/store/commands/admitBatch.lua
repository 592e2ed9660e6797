--[[
  Admits a new batch against its tenant's limit on unfinished batches: first drops the
  members of the tenant's set whose batch is gone or final, then adds the new batch when
  fewer than the limit are left. The caller reads the set (SMEMBERS) and passes the
  members' records as KEYS (Redis Cluster); a member added since counts as unfinished.

  Input:
    KEYS[1] the tenant's unfinished batches (RedisKeys.tenantActiveBatches)
    KEYS[2..n] the batch records (RedisKeys.batch) of the members read, in ARGV's order

    ARGV[1] limit
    ARGV[2] the new batch's id
    ARGV[3..] the members' ids, n - 1 of them

  Output:
    1 admitted (the id is in the set), 0 at the limit (nothing added).
]]
local final = { completed = true, failed = true, expired = true, cancelled = true }
for i = 2, #KEYS do
  local raw = redis.call("GET", KEYS[i])
  local gone = not raw
  if raw then
    local ok, batch = pcall(cjson.decode, raw)
    gone = (not ok) or final[batch.status] == true
  end
  if gone then redis.call("SREM", KEYS[1], ARGV[1 + i]) end
end
if redis.call("SCARD", KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call("SADD", KEYS[1], ARGV[2])
return 1
