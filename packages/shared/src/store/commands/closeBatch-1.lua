--[[
  Closes a batch to new results: from here on late finishers are not recorded, so the
  files match the counts. Idempotent for one target.

  Input:
    KEYS[1] the batch's counters hash (RedisKeys.batchCounts)

    ARGV[1] the final status the batch closes to

  Output:
    1 closed (now or before) to ARGV[1], 0 already closing to another status.
]]
local closing = redis.call("HGET", KEYS[1], "closing")
if closing then return closing == ARGV[1] and 1 or 0 end
redis.call("HDEL", KEYS[1], "open")
redis.call("HSET", KEYS[1], "closing", ARGV[1])
return 1
