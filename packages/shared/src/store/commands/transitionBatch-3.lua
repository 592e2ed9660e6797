--[[
  Moves a batch between statuses atomically (several schedulers may act on one batch),
  keeps the per-status tally for metrics, and drops final batches from the active set.

  Input:
    KEYS[1] the batch (RedisKeys.batch)
    KEYS[2] the active batches set (RedisKeys.activeBatches)
    KEYS[3] the status counts hash (RedisKeys.batchStatusCounts)

    ARGV[1] allowed current statuses (JSON array)
    ARGV[2] patch (JSON object)
    ARGV[3] batch id

  Output:
    the new batch (JSON), or false when it is missing or in another status.
]]
local raw = redis.call("GET", KEYS[1])
if not raw then return false end
local batch = cjson.decode(raw)
local allowed = false
for _, status in ipairs(cjson.decode(ARGV[1])) do
  if batch.status == status then allowed = true end
end
if not allowed then return false end
local previous = batch.status
for field, value in pairs(cjson.decode(ARGV[2])) do batch[field] = value end
local encoded = cjson.encode(batch)
redis.call("SET", KEYS[1], encoded)
if batch.status ~= previous then
  redis.call("HINCRBY", KEYS[3], previous, -1)
  redis.call("HINCRBY", KEYS[3], batch.status, 1)
end
local s = batch.status
if s == "completed" or s == "failed" or s == "expired" or s == "cancelled" then
  redis.call("SREM", KEYS[2], ARGV[3])
end
return encoded
