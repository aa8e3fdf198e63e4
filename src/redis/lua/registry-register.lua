-- KEYS[1] agent hash, KEYS[2] expiry zset, KEYS[3..n] index sets the agent belongs to
-- ARGV[1] agent id, ARGV[2] record JSON, ARGV[3] health, ARGV[4] now ms, ARGV[5] heartbeat ms,
-- ARGV[6] expires at ms
-- Writes the record, its expiry and its index entries in one step. Returns 1.
--  
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'health', ARGV[3], 'running', '0', 'draining', '0',
  'heartbeatAt', ARGV[4], 'heartbeatMs', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
for i = 3, #KEYS do redis.call('SADD', KEYS[i], ARGV[1]) end
return 1
