-- KEYS[1] the type's keys with held tasks
-- ARGV[1] the type's key base, ARGV[2] lease ms (for the woken tasks' reservations), ARGV[3] the
-- task id ('' for none), ARGV[4] its concurrency key.
-- Returns the woken tasks as "<concurrency key>\t<pool>\t<id>".
--
-- A keyed task ended (ran, failed, or went back to waiting): its slot is freed and the key's held
-- tasks that now fit are woken. With no task id, wakes the held tasks of every key of the type (up to
-- 200 keys a call), for slots whose agent died and whose leases ended, and hands back woken tasks
-- whose waker died before promoting them.
--- @include "key-slots-lib"
local base = ARGV[1]
local now = serverNow()
local leaseMs = tonumber(ARGV[2])
local woken = {}
if ARGV[3] ~= '' then
  rcall('ZREM', slotsKey(base, ARGV[4]), ARGV[3])
  wake(base, KEYS[1], ARGV[4], now, leaseMs, woken)
else
  for _, key in ipairs(rcall('ZRANGE', KEYS[1], 0, 199)) do wake(base, KEYS[1], key, now, leaseMs, woken) end
  -- Tasks woken by an agent that died before it promoted them: promote them here.
  for _, entry in ipairs(rcall('ZRANGEBYSCORE', base .. 'waking', '-inf', now, 'LIMIT', 0, 200)) do
    rcall('ZADD', base .. 'waking', now + leaseMs, entry)
    woken[#woken + 1] = entry
  end
end
return woken
