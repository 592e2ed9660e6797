--[[
  Lists a job that was just moved to BullMQ's delayed set for promotion when a place of
  its tenant frees.

  Input:
    KEYS[1] the tenant's active set (RedisKeys.tenantActive)
    KEYS[2] the tenant's parked list (RedisKeys.tenantParked)
    KEYS[3] the parked tenants' limits (RedisKeys.parkedTenants)

    ARGV[1] now (ms)
    ARGV[2] max
    ARGV[3] tenant
    ARGV[4] the entry: "<lane>\t<job id>"

  Output:
    1 when a place came free meanwhile (the caller promotes the job itself, unlisted),
    0 when it was listed.
]]
--- @include "includes/freePlaces"
if freePlaces(ARGV[1], ARGV[2]) > 0 then return 1 end
redis.call("RPUSH", KEYS[2], ARGV[4])
redis.call("HSET", KEYS[3], ARGV[3], ARGV[2])
return 0
