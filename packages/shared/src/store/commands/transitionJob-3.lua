--[[
  Moves a job record to a new status when its current status is one of the allowed ones.

  Input:
    KEYS[1] the job record (RedisKeys.job)
    KEYS[2] the results hash of the batch named by ARGV[6] (RedisKeys.batchResults)
    KEYS[3] the counters hash of that batch (RedisKeys.batchCounts)

    ARGV[1] allowed current statuses (JSON array)
    ARGV[2] patch (JSON object)
    ARGV[3] TTL in seconds to set (a final transition), or 0 to keep the record's TTL
    ARGV[4] job-events channel (a pub/sub channel, not a key)
    ARGV[5] job id
    ARGV[6] the batch id KEYS[2] and KEYS[3] belong to ("" when the caller knows of none)
    ARGV[7] largest record (bytes) published whole with the id

  Output:
    the new record (JSON), or false when the record is missing or in another status.
    An error reply "CORRAL_BATCH_KEYS <batch id>" (and nothing written) when a final
    transition of a batch line came without that batch's keys: the caller retries with them.

  A final transition of a batch line (a record with batch_id and custom_id) also records
  the line's result in its batch, exactly once per custom_id and only while the batch is
  open (its counters hold open = 1): HSETNX into the results hash, and only when that set
  something, HINCRBY of the counter for the status. A line that ran twice (its worker died)
  is so counted once, whoever finalizes it. A line that finishes after its batch closed
  changes its own record only.
]]
local raw = redis.call("GET", KEYS[1])
if not raw then return false end
local record = cjson.decode(raw)
local previous = record.status
local allowed = false
for _, status in ipairs(cjson.decode(ARGV[1])) do
  if record.status == status then allowed = true end
end
if not allowed then return false end
for field, value in pairs(cjson.decode(ARGV[2])) do record[field] = value end
local final = tonumber(ARGV[3]) > 0
local was_final = previous == "succeeded" or previous == "failed" or previous == "cancelled"
local batch_line = final and not was_final and type(record.batch_id) == "string" and type(record.custom_id) == "string"
if batch_line and record.batch_id ~= ARGV[6] then
  return redis.error_reply("CORRAL_BATCH_KEYS " .. record.batch_id)
end
local encoded = cjson.encode(record)
if final then
  redis.call("SET", KEYS[1], encoded, "EX", ARGV[3])
else
  -- A later patch (e.g. a cancelled job's partial text) keeps the expiry a final state set.
  redis.call("SET", KEYS[1], encoded, "KEEPTTL")
end
if final then
  if batch_line then
    local field = ({succeeded = "completed", failed = "failed", cancelled = "cancelled"})[record.status]
    -- Only while the batch is open (as recordLine checks): once it closed, its files are
    -- written from the results, and once they were dropped, HSETNX/HINCRBY would recreate
    -- them without a TTL.
    if field and redis.call("HGET", KEYS[3], "open") == "1" then
      local line = cjson.encode({
        job_id = record.id, status = record.status, model = record.model,
        finished_at = record.finished_at, result = record.result, error = record.error,
      })
      if redis.call("HSETNX", KEYS[2], record.custom_id, line) == 1 then
        redis.call("HINCRBY", KEYS[3], field, 1)
      end
    end
  end
  -- The record rides along when small, so a waiter need not read it back.
  if #encoded <= tonumber(ARGV[7]) then
    redis.call("PUBLISH", ARGV[4], ARGV[5] .. " " .. encoded)
  else
    redis.call("PUBLISH", ARGV[4], ARGV[5])
  end
end
return encoded
