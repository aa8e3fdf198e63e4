-- KEYS[1] breaker hash, KEYS[2] probe permits zset
-- ARGV[1] now ms, ARGV[2] events channel, ARGV[3] breaker name
-- Admin reset: CLOSED with an empty window; the trip count is kept. Returns 'CLOSED'.
--  
local trips = tonumber(redis.call('HGET', KEYS[1], 'trips') or '0')
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'state', 'CLOSED', 'trips', trips, 'changedAt', ARGV[1], 'reason', 'reset by an operator')
redis.call('PUBLISH', ARGV[2], cjson.encode({ name = ARGV[3], state = 'CLOSED', at = tonumber(ARGV[1]), trips = trips }))
return 'CLOSED'
