-- KEYS[1] due zset (schedule id -> its next tick, ms), KEYS[2] claims zset (id -> lease deadline),
-- KEYS[3] claim-ticks hash (id -> the tick being fired)
-- ARGV[1] now (ms), ARGV[2] lease (ms), ARGV[3] most ticks to claim
-- Claims the ticks that are due, each for one caller until its lease ends. A claim whose lease ended
-- (its process died mid-fire) goes back to due first, with its tick, and is claimed again here (a
-- fire is idempotent per tick). Returns id, tick, id, tick, ...
--  
local due, claims, ticks = KEYS[1], KEYS[2], KEYS[3]
local now, lease, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rcall = redis.call

for _, id in ipairs(rcall('ZRANGEBYSCORE', claims, '-inf', now, 'LIMIT', 0, batch)) do
  local tick = rcall('HGET', ticks, id)
  -- LT: a newer due tick (the schedule changed meanwhile) does not push back the one left unfired.
  if tick then rcall('ZADD', due, 'LT', tick, id) end
  rcall('ZREM', claims, id)
  rcall('HDEL', ticks, id)
end

local out = {}
local ready = rcall('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
for i = 1, #ready, 2 do
  local id, tick = ready[i], ready[i + 1]
  rcall('ZREM', due, id)
  rcall('ZADD', claims, now + lease, id)
  rcall('HSET', ticks, id, tick)
  out[#out + 1] = id
  out[#out + 1] = tick
end
return out
