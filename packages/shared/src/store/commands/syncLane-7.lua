--[[
  Keeps one lane's place among the lanes with jobs (RedisKeys.lanesWithJobs), the sorted
  set a claim loop reads instead of every lane in the catalog. A lane with a job ready to
  take (listed for fair claim, waiting, prioritized, or a retry whose backoff ran out) is
  scored with a time (`ZADD LT now`: its clock, unless it already had an older one), so
  slots looking at the longest-waiting lanes see it; a lane whose jobs are all running,
  parked or in backoff is scored NOTHING_HELD (after every waiting lane); a lane with no
  job in any state leaves the set.

  It is the only way a lane leaves the set, and it checks every state in one step, so a
  lane cannot leave while a job is anywhere in it: a job enters a lane only through a
  submit, whose holdFair adds the lane to the set after BullMQ holds the job, or
  from the lane's own active list (a retry, a stalled job, a job handed back), and the
  lane stays in the set while its active list is not empty.

  Input:
    KEYS[1] the set of lanes with jobs (RedisKeys.lanesWithJobs)
    KEYS[2] the lane's BullMQ wait list
    KEYS[3] the lane's BullMQ active list
    KEYS[4] the lane's BullMQ prioritized set
    KEYS[5] the lane's BullMQ delayed set (held and parked jobs, retries in backoff)
    KEYS[6] the lane's BullMQ paused list
    KEYS[7] the lane's jobs listed for fair claim (RedisKeys.fairJobs)

    ARGV[1] the lane's name
    ARGV[2] now (ms)

  Output:
    2 when the lane has a job ready, 1 when it has jobs but none ready, 0 when it has none
    (and left the set).
]]
--- @include "includes/nothingHeld"
local now = tonumber(ARGV[2])
-- BullMQ's delayed score is the due time (ms) × 2^12 + a counter.
if redis.call("LLEN", KEYS[2]) > 0 or redis.call("ZCARD", KEYS[4]) > 0 or redis.call("ZCARD", KEYS[7]) > 0
  or redis.call("ZCOUNT", KEYS[5], 0, (now + 1) * 4096 - 1) > 0 then
  redis.call("ZADD", KEYS[1], "LT", now, ARGV[1])
  return 2
end
if redis.call("LLEN", KEYS[3]) > 0 or redis.call("ZCARD", KEYS[5]) > 0 or redis.call("LLEN", KEYS[6]) > 0 then
  redis.call("ZADD", KEYS[1], NOTHING_HELD, ARGV[1])
  return 1
end
redis.call("ZREM", KEYS[1], ARGV[1])
return 0
