--[[
  The ingest's way to record a line that never became a job: exactly once per custom_id,
  and only while the batch is open (as transitionJob does for jobs).

  Input:
    KEYS[1] the batch's results hash (RedisKeys.batchResults)
    KEYS[2] the batch's counters hash (RedisKeys.batchCounts)

    ARGV[1] custom_id
    ARGV[2] the line's result (JSON)
    ARGV[3] the counter field to increment

  Output:
    1 when recorded, 0 when the batch is closed or the custom_id has a result already.
]]
if redis.call("HGET", KEYS[2], "open") ~= "1" then return 0 end
if redis.call("HSETNX", KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call("HINCRBY", KEYS[2], ARGV[3], 1)
  return 1
end
return 0
