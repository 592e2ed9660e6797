--[[
  Deletes a lease while it is still the caller's.

  Input:
    KEYS[1] the lease (RedisKeys.batchLease)

    ARGV[1] lease token

  Output:
    1 released, 0 the lease is someone else's or gone.
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call("DEL", KEYS[1])
