-- KEYS[1] the type's keys with held tasks (unused: it routes the call to the type's cluster slot)
-- ARGV[1] the type's key base, ARGV[2] lease ms, then pairs: concurrency key, task id.
--
-- Renews the slots of the keyed tasks an agent is running (a slot lost meanwhile is not taken back).
--- @include "key-slots-lib"
local base = ARGV[1]
local leaseMs = tonumber(ARGV[2])
local untilMs = serverNow() + leaseMs
for i = 3, #ARGV, 2 do
  local slots = slotsKey(base, ARGV[i])
  rcall('ZADD', slots, 'XX', untilMs, ARGV[i + 1])
  rcall('PEXPIRE', slots, 2 * leaseMs)
end
return 0
