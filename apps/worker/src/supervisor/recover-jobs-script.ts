/**
 * LUA (move to a .lua file with the other Corral scripts at merge).
 *
 * Puts back in its lane every listed job whose lock a dead slot process still holds, in
 * one atomic step per lane, and counts the interrupted run as one attempt. It does what
 * BullMQ 6.7.0's `moveJobFromActiveToWait` (what `job.moveToWait(token)` runs) does, for a
 * lock token given by its prefix (`<slot id>:<pid>:`, every token of that process), plus:
 * `atm` (attemptsMade) + 1, and a marker for prioritized jobs too, so an idle slot blocked on
 * the lane's markers wakes at once. Whether the job has attempts left is decided by the
 * slot that claims it next (`JobRunner`: attemptsMade + stalledCounter ≥ attempts fails it
 * with `job_stalled`).
 *
 * KEYS[1] active, KEYS[2] wait, KEYS[3] stalled, KEYS[4] meta, KEYS[5] prioritized,
 * KEYS[6] marker, KEYS[7] events, KEYS[7 + i] the i-th job's hash key (its lock is
 * `<job key>:lock`).
 * ARGV[1] the dead process's token prefix; ARGV[1 + i] the i-th job's id.
 * Returns `{id, attemptsMade, ...}` of the jobs it moved. Jobs whose lock is gone (the stalled
 * check got there first) or held by another token are left alone.
 */
export const RECOVER_JOBS_LUA = `
local rcall = redis.call
local prefix = ARGV[1]
local activeKey, waitKey, stalledKey, metaKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prioritizedKey, markerKey, eventsKey = KEYS[5], KEYS[6], KEYS[7]
local moved = {}
for i = 2, #ARGV do
  local jobId = ARGV[i]
  local jobKey = KEYS[6 + i]
  local lockKey = jobKey .. ":lock"
  local token = rcall("GET", lockKey)
  if token and string.sub(token, 1, #prefix) == prefix and rcall("LREM", activeKey, 1, jobId) > 0 then
    rcall("DEL", lockKey)
    rcall("SREM", stalledKey, jobId)
    local attempts = rcall("HINCRBY", jobKey, "atm", 1)
    local meta = rcall("HMGET", metaKey, "paused", "concurrency", "opts.maxLenEvents")
    local pausedOrMaxed = meta[1] ~= false
    if not pausedOrMaxed and meta[2] then
      pausedOrMaxed = rcall("LLEN", activeKey) >= tonumber(meta[2])
    end
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    if priority > 0 then
      -- In front of the jobs of its priority, as BullMQ's pushBackJobWithPriority.
      rcall("ZADD", prioritizedKey, priority * 0x100000000, jobId)
    else
      rcall("RPUSH", waitKey, jobId)
    end
    if not pausedOrMaxed then rcall("ZADD", markerKey, 0, "0") end
    rcall("XADD", eventsKey, "MAXLEN", "~", meta[3] or 10000, "*", "event", "waiting", "jobId", jobId, "prev", "active")
    moved[#moved + 1] = jobId
    moved[#moved + 1] = attempts
  end
end
return moved
`;
