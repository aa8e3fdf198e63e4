-- KEYS[1] the type's keys with held tasks
-- ARGV[1] the type's key base (`<prefix>:conc:{<type>}:`), ARGV[2] the concurrency key, ARGV[3] its
-- limit, ARGV[4] the task id, ARGV[5] lease ms, ARGV[6] the task's held member ("<pool>\t<id>"),
-- ARGV[7] its order among the key's held tasks.
-- Returns 1 when it may run (a slot taken, or its own slot or reservation renewed), 0 when the key is
-- at its limit: the task is recorded as held (the caller moves it out of the way until woken).
--
-- A keyed task asks for a slot of its concurrency key before it runs.
--- @include "key-slots-lib"
local base, key, id = ARGV[1], ARGV[2], ARGV[4]
local now = serverNow()
local leaseMs = tonumber(ARGV[5])
local slots = slotsKey(base, key)
rcall('ZREMRANGEBYSCORE', slots, '-inf', now)
if rcall('ZSCORE', slots, id) or rcall('ZCARD', slots) < tonumber(ARGV[3]) then
  rcall('ZADD', slots, now + leaseMs, id)
  rcall('PEXPIRE', slots, 2 * leaseMs)
  rcall('ZREM', heldKey(base, key), ARGV[6])
  return 1
end
rcall('ZADD', heldKey(base, key), ARGV[7], ARGV[6])
rcall('ZADD', KEYS[1], ARGV[3], key)
return 0
