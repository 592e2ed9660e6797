--[[
  Writes many job records, each only where none exists (SET NX): a batch ingest chunk.

  Input:
    KEYS[1..n] the job records (RedisKeys.job); n is passed with the call

    ARGV[1..n] their JSON, in the same order

  Output:
    n
]]
for i = 1, #KEYS do redis.call("SET", KEYS[i], ARGV[i], "NX") end
return #KEYS
