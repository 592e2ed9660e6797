--[[
  Prunes one page of a tenant's queued set at a limit: drops the members whose record is
  no longer queued, or is gone past the grace period (which covers a record being written
  right now), with their bytes. The caller reads the page (ZRANGE … WITHSCORES, oldest
  first) and passes the members' records as KEYS, so every key is known beforehand
  (Redis Cluster).

  Input:
    KEYS[1] the tenant's queued set (RedisKeys.tenantQueued)
    KEYS[2] its "found full" marker (RedisKeys.tenantQueuedFull)
    KEYS[3] the tenant's queued bytes (RedisKeys.tenantQueuedBytes)
    KEYS[4..n] the records (RedisKeys.job) of the page's members, in ARGV's order

    ARGV[1] cap (jobs)
    ARGV[2] now (ms)
    ARGV[3] grace (ms)
    ARGV[4] "found full" marker TTL (ms)
    ARGV[5] how many members precede the page (those kept on earlier pages)
    ARGV[6] byte limit (0: none)
    ARGV[7] bytes the caller wants to add (the job or jobs waiting for room)
    ARGV[8..] the page's member ids, then their scores, n - 3 of each

  Output:
    { members left in the set, members of the page kept, bytes held }. When the set is
    still at a limit and no member lies beyond this page, the marker is set: the set was
    found full, and submits are refused without a rescan until the marker expires or a
    release.
]]
local m = #KEYS - 3
local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local kept = 0
for i = 1, m do
  local id, score = ARGV[7 + i], tonumber(ARGV[7 + m + i])
  local raw = redis.call("GET", KEYS[3 + i])
  local gone
  if raw then
    local ok, record = pcall(cjson.decode, raw)
    gone = (not ok) or record.status ~= "queued"
  else
    gone = score < now - grace
  end
  if gone then
    redis.call("ZREM", KEYS[1], id)
    local bytes = redis.call("HGET", KEYS[3], id)
    if bytes then
      redis.call("HDEL", KEYS[3], id)
      redis.call("HINCRBY", KEYS[3], ":total", -tonumber(bytes))
    end
  else
    kept = kept + 1
  end
end
local count = redis.call("ZCARD", KEYS[1])
local held = tonumber(redis.call("HGET", KEYS[3], ":total") or "0")
local limit = tonumber(ARGV[6])
local over = count >= tonumber(ARGV[1]) or (limit > 0 and held + tonumber(ARGV[7]) > limit)
if over and tonumber(ARGV[5]) + kept >= count then
  redis.call("SET", KEYS[2], "1", "PX", ARGV[4])
end
return { count, kept, held }
