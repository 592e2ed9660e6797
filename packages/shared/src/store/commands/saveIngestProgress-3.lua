--[[
  Saves a batch's ingest progress only while the caller still holds the lease, and renews it.

  Input:
    KEYS[1] the batch's lease (RedisKeys.batchLease)
    KEYS[2] the batch's counters hash (RedisKeys.batchCounts)
    KEYS[3] the batch (RedisKeys.batch)

    ARGV[1] lease token
    ARGV[2] lease length (ms)
    ARGV[3..] counter field and value pairs

  Output:
    0 the lease is lost (nothing saved), 1 saved, 2 saved but the batch is no longer in progress.
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
for i = 3, #ARGV, 2 do redis.call("HSET", KEYS[2], ARGV[i], ARGV[i + 1]) end
local raw = redis.call("GET", KEYS[3])
if not raw or cjson.decode(raw).status ~= "in_progress" then return 2 end
return 1
