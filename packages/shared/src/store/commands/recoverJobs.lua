--[[
  Puts back in its lane every listed job whose lock a dead slot process still holds, in
  one atomic step per lane, and counts the interrupted run as one attempt. It does what
  BullMQ 6.7.0's moveJobFromActiveToWait (job.moveToWait(token)) does, for a lock token
  given by its prefix (`<slot id>:<pid>:<random>:`, every token of that process), plus:
  attemptsMade (`atm`) + 1, and a marker for prioritized jobs too, so an idle slot
  blocked on the lane's markers wakes at once. Whether the job has attempts left is
  decided by the slot that claims it next (JobRunner: attemptsMade + stalledCounter ≥
  attempts fails it with job_stalled). It reads BullMQ's internal layout, which is why
  bullmq is pinned exactly.

  Only a supervisor whose slot process has exited calls it, so no live process holds
  these locks: no job is put back while it still runs.

  Input:
    KEYS[1] the lane's active list
    KEYS[2] its wait list
    KEYS[3] its stalled set
    KEYS[4] its meta hash
    KEYS[5] its prioritized set
    KEYS[6] its marker
    KEYS[7] its events stream
    KEYS[8..n] each job's hash key, then its lock key (`<job key>:lock`), in pairs; n is
      passed with the call

    ARGV[1] the dead process's token prefix
    ARGV[1 + i] the i-th job's id

  Output:
    { id, attemptsMade, ... } of the jobs it moved. A job whose lock is gone (the stalled
    check got there first) or held by another token is left alone.
]]
local prefix = ARGV[1]
local moved = {}
for i = 2, #ARGV do
  local jobId = ARGV[i]
  local job = 6 + 2 * (i - 1)
  local lock = job + 1
  local token = redis.call("GET", KEYS[lock])
  if token and string.sub(token, 1, #prefix) == prefix and redis.call("LREM", KEYS[1], 1, jobId) > 0 then
    redis.call("DEL", KEYS[lock])
    redis.call("SREM", KEYS[3], jobId)
    local attempts = redis.call("HINCRBY", KEYS[job], "atm", 1)
    local meta = redis.call("HMGET", KEYS[4], "paused", "concurrency", "opts.maxLenEvents")
    local pausedOrMaxed = meta[1] ~= false
    if not pausedOrMaxed and meta[2] then
      pausedOrMaxed = redis.call("LLEN", KEYS[1]) >= tonumber(meta[2])
    end
    local priority = tonumber(redis.call("HGET", KEYS[job], "priority")) or 0
    if priority > 0 then
      -- In front of the jobs of its priority, as BullMQ's pushBackJobWithPriority.
      redis.call("ZADD", KEYS[5], priority * 0x100000000, jobId)
    else
      redis.call("RPUSH", KEYS[2], jobId)
    end
    if not pausedOrMaxed then redis.call("ZADD", KEYS[6], 0, "0") end
    redis.call("XADD", KEYS[7], "MAXLEN", "~", meta[3] or 10000, "*", "event", "waiting", "jobId", jobId, "prev", "active")
    moved[#moved + 1] = jobId
    moved[#moved + 1] = attempts
  end
end
return moved
