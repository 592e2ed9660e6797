--[[
  Prunes one page of a tenant's queued set at its cap: drops the members whose record is
  no longer queued, or is gone past the grace period (which covers a record being written
  right now). The caller reads the page (ZRANGE … WITHSCORES, oldest first) and passes the
  members' records as KEYS, so every key is known beforehand (Redis Cluster).

  Input:
    KEYS[1] the tenant's queued set (RedisKeys.tenantQueued)
    KEYS[2] its "found full" marker (RedisKeys.tenantQueuedFull)
    KEYS[3..n] the records (RedisKeys.job) of the page's members, in ARGV's order

    ARGV[1] cap
    ARGV[2] now (ms)
    ARGV[3] grace (ms)
    ARGV[4] "found full" marker TTL (ms)
    ARGV[5] how many members precede the page (those kept on earlier pages)
    ARGV[6..] the page's member ids, then their scores, n - 2 of each

  Output:
    { members left in the set, members of the page kept }. When the set is still at the
    cap and no member lies beyond this page, the marker is set: the set was found full,
    and submits are refused without a rescan until the marker expires or a release.
]]
local m = #KEYS - 2
local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local kept = 0
for i = 1, m do
  local id, score = ARGV[5 + i], tonumber(ARGV[5 + m + i])
  local raw = redis.call("GET", KEYS[2 + i])
  local gone
  if raw then
    local ok, record = pcall(cjson.decode, raw)
    gone = (not ok) or record.status ~= "queued"
  else
    gone = score < now - grace
  end
  if gone then
    redis.call("ZREM", KEYS[1], id)
  else
    kept = kept + 1
  end
end
local count = redis.call("ZCARD", KEYS[1])
if count >= tonumber(ARGV[1]) and tonumber(ARGV[5]) + kept >= count then
  redis.call("SET", KEYS[2], "1", "PX", ARGV[4])
end
return { count, kept }
