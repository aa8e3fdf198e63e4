-- KEYS[1] breaker hash, KEYS[2] probe permits zset
-- ARGV[1] now ms, ARGV[2] token, ARGV[3] '1' success / '0' failure, ARGV[4] halfOpenProbes,
-- ARGV[5] events channel, ARGV[6] breaker name
-- Reports a probe. A failure re-opens the breaker (a new trip); halfOpenProbes successes close it.
-- A token that is no longer a live permit (expired, breaker reset) changes nothing.
-- Returns the state after.
--  
local state = redis.call('HGET', KEYS[1], 'state') or 'CLOSED'
local now = tonumber(ARGV[1])
-- A permit's score is when it expires; one past it counts for nothing, even if no acquire has swept it yet.
local expires = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[2]) or '-1')
redis.call('ZREM', KEYS[2], ARGV[2])
if expires < now or state ~= 'HALF_OPEN' then return state end
if ARGV[3] == '1' then
  local n = redis.call('HINCRBY', KEYS[1], 'probeSuccesses', 1)
  if n < tonumber(ARGV[4]) then return 'HALF_OPEN' end
  redis.call('HSET', KEYS[1], 'state', 'CLOSED', 'changedAt', now, 'reason', n .. ' probe(s) succeeded')
  redis.call('HDEL', KEYS[1], 'openedAt', 'probeSuccesses')
  redis.call('DEL', KEYS[2])
  local trips = tonumber(redis.call('HGET', KEYS[1], 'trips') or '0')
  redis.call('PUBLISH', ARGV[5], cjson.encode({ name = ARGV[6], state = 'CLOSED', at = now, trips = trips }))
  return 'CLOSED'
end
local trips = redis.call('HINCRBY', KEYS[1], 'trips', 1)
redis.call('HSET', KEYS[1], 'state', 'OPEN', 'openedAt', now, 'changedAt', now, 'reason', 'a probe failed')
redis.call('HDEL', KEYS[1], 'probeSuccesses')
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[5], cjson.encode({ name = ARGV[6], state = 'OPEN', at = now, trips = trips }))
return 'OPEN'
