-- KEYS[1] breaker hash, KEYS[2] probe permits zset (token -> expiry ms)
-- ARGV[1] now ms, ARGV[2] openMs, ARGV[3] halfOpenProbes, ARGV[4] token, ARGV[5] permit ttl ms,
-- ARGV[6] events channel, ARGV[7] breaker name
-- Asks to run one call. CLOSED: go ahead. OPEN past openMs: becomes HALF_OPEN. HALF_OPEN: grants a
-- probe permit while fewer than halfOpenProbes are out (permits of dead holders expire).
-- Returns 'CLOSED', 'PROBE' or 'DENIED'.
--  
local state = redis.call('HGET', KEYS[1], 'state') or 'CLOSED'
if state == 'CLOSED' then return 'CLOSED' end
local now = tonumber(ARGV[1])
if state == 'OPEN' then
  local openedAt = tonumber(redis.call('HGET', KEYS[1], 'openedAt') or '0')
  if now < openedAt + tonumber(ARGV[2]) then return 'DENIED' end
  redis.call('HSET', KEYS[1], 'state', 'HALF_OPEN', 'probeSuccesses', 0, 'changedAt', now)
  redis.call('DEL', KEYS[2])
  local trips = tonumber(redis.call('HGET', KEYS[1], 'trips') or '0')
  redis.call('PUBLISH', ARGV[6], cjson.encode({ name = ARGV[7], state = 'HALF_OPEN', at = now, trips = trips }))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'DENIED' end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
return 'PROBE'
