-- Shared by the key-slot scripts. A concurrency key's running tasks are a zset of task id -> when its
-- lease ends (ms, on the server's clock; renewed while the task runs, so a dead agent's slot comes
-- back when its lease ends); the tasks that found the key at its limit are a zset of
-- "<pool>\t<task id>" -> their order; the type's keys with held tasks are a zset key -> its limit.
-- Every key of a type shares its hash tag, so these scripts run on one cluster slot.
local rcall = redis.call

local function serverNow()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function slotsKey(base, key) return base .. 'slots:' .. key end
local function heldKey(base, key) return base .. 'held:' .. key end

-- Frees what the key's limit allows of its held tasks: each gets a slot reserved for `leaseMs` (taken
-- over when it runs) and is returned ("<key>\t<pool>\t<id>"), to be promoted out of its wait. Until
-- its waker says it promoted it, it is also in the type's waking set (base .. 'waking', score: when
-- another agent's tick promotes it instead, should its waker have died in between).
local function wake(base, heldKeys, key, now, leaseMs, woken)
  local limit = tonumber(rcall('ZSCORE', heldKeys, key))
  if not limit then return end
  local slots = slotsKey(base, key)
  rcall('ZREMRANGEBYSCORE', slots, '-inf', now)
  local free = limit - rcall('ZCARD', slots)
  if free > 0 then
    local popped = rcall('ZPOPMIN', heldKey(base, key), free)
    for i = 1, #popped, 2 do
      local member = popped[i]
      rcall('ZADD', slots, now + leaseMs, string.match(member, '\t(.*)$'))
      rcall('ZADD', base .. 'waking', now + leaseMs, key .. '\t' .. member)
      woken[#woken + 1] = key .. '\t' .. member
    end
    if #popped > 0 then rcall('PEXPIRE', slots, 2 * leaseMs) end
  end
  if rcall('EXISTS', heldKey(base, key)) == 0 then rcall('ZREM', heldKeys, key) end
end
