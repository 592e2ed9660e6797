--[[
  Keeps one lane's place in the set of lanes with jobs (RedisKeys.lanesWithJobs), the set
  a claim loop reads instead of every lane in the catalog: adds the lane when it holds any
  job in any state a slot must see (held or parked in BullMQ's delayed set, waiting,
  prioritized, active, paused, or listed for fair claim), and removes it otherwise.

  It is the only way a lane leaves the set, and it checks every state in one step, so a
  lane cannot leave while a job is anywhere in it: a job enters a lane only through a
  submit, which adds the lane to the set after BullMQ holds the job (FairQueue.hold), or
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

  Output:
    1 when the lane has jobs (and is in the set), 0 when it has none (and is not).
]]
if redis.call("LLEN", KEYS[2]) > 0 or redis.call("LLEN", KEYS[3]) > 0
  or redis.call("ZCARD", KEYS[4]) > 0 or redis.call("ZCARD", KEYS[5]) > 0
  or redis.call("LLEN", KEYS[6]) > 0 or redis.call("ZCARD", KEYS[7]) > 0 then
  redis.call("SADD", KEYS[1], ARGV[1])
  return 1
end
redis.call("SREM", KEYS[1], ARGV[1])
return 0
