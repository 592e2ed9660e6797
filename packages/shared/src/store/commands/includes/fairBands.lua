--[[
  The band of a BullMQ priority level (priorities.ts, PRIORITY_BASE): 0 interactive
  (OpenAI routes, 1-100), 1 native (101-200), 2 batch (above 1000). Fair claim never
  releases a job of a later band while one of an earlier band waits on the lane.
]]
local function fairBand(priority)
  if priority <= 100 then return 0 end
  if priority <= 1000 then return 1 end
  return 2
end
