--[[
  The score of a lane among the lanes with jobs (RedisKeys.lanesWithJobs) that holds no
  job for fair claim (only running jobs, retries, parked ones): after every waiting lane,
  whose scores are times in ms. LaneIndex.NOTHING_HELD on the TypeScript side.
]]
local NOTHING_HELD = 1e15
