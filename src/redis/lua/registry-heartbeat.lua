-- KEYS[1] agent hash, KEYS[2] expiry zset
-- ARGV[1] agent id, ARGV[2] now ms, ARGV[3] expires at ms, ARGV[4] health, ARGV[5] health reason,
-- ARGV[6] running tasks, ARGV[7] response time ms ('' when unknown)
-- Refreshes a live agent. Returns -1 when the record is gone (expired: the agent must register
-- again), else the draining flag (0 or 1), so operators' drain requests reach the agent.
--  
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'heartbeatAt', ARGV[2], 'health', ARGV[4], 'healthReason', ARGV[5],
  'running', ARGV[6], 'responseMs', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return tonumber(redis.call('HGET', KEYS[1], 'draining'))
