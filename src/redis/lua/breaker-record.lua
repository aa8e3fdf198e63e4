-- KEYS[1] breaker hash
-- ARGV[1] now ms, ARGV[2] successes, ARGV[3] failures, ARGV[4] failureRatio, ARGV[5] minRequests,
-- ARGV[6] windowMs, ARGV[7] events channel, ARGV[8] breaker name
-- Adds outcomes to the rolling window (10 buckets of windowMs/10, slot = bucket % 10, stamped) and
-- trips the breaker when failures/total >= failureRatio with total >= minRequests. Outcomes only
-- count while CLOSED (probe results go through breaker-probe). Returns the state after.
--  
local state = redis.call('HGET', KEYS[1], 'state') or 'CLOSED'
if state ~= 'CLOSED' then return state end
local now = tonumber(ARGV[1])
local width = math.max(1, math.floor(tonumber(ARGV[6]) / 10))
local bucket = math.floor(now / width)
local slot = bucket % 10
local stamp = tonumber(redis.call('HGET', KEYS[1], 't' .. slot) or '-1')
if stamp ~= bucket then
  redis.call('HSET', KEYS[1], 't' .. slot, bucket, 's' .. slot, 0, 'f' .. slot, 0)
end
redis.call('HINCRBY', KEYS[1], 's' .. slot, ARGV[2])
redis.call('HINCRBY', KEYS[1], 'f' .. slot, ARGV[3])
local fields = {}
for i = 0, 9 do
  fields[#fields + 1] = 't' .. i
  fields[#fields + 1] = 's' .. i
  fields[#fields + 1] = 'f' .. i
end
local v = redis.call('HMGET', KEYS[1], unpack(fields))
local s, f = 0, 0
for i = 0, 9 do
  local t = tonumber(v[i * 3 + 1] or '-1')
  if t and t > bucket - 10 then
    s = s + tonumber(v[i * 3 + 2] or '0')
    f = f + tonumber(v[i * 3 + 3] or '0')
  end
end
local total = s + f
if total >= tonumber(ARGV[5]) and f / total >= tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], unpack(fields))
  local trips = redis.call('HINCRBY', KEYS[1], 'trips', 1)
  redis.call('HSET', KEYS[1], 'state', 'OPEN', 'openedAt', now, 'changedAt', now,
    'reason', f .. ' of ' .. total .. ' outcomes failed')
  redis.call('PUBLISH', ARGV[7], cjson.encode({ name = ARGV[8], state = 'OPEN', at = now, trips = trips }))
  return 'OPEN'
end
return 'CLOSED'
