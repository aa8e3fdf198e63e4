-- KEYS[1] definitions hash, KEYS[2] last-fires hash, KEYS[3] due zset, KEYS[4] claims zset, KEYS[5] claim-ticks hash,
-- KEYS[6] index zset
-- ARGV[1] schedule id
-- Deletes a schedule with its next tick and any claim on it (a fire under way finds it gone when it
-- ends, and starts nothing more). Returns 1 if it existed.
--  
local id = ARGV[1]
local rcall = redis.call
local existed = rcall('HDEL', KEYS[1], id)
rcall('HDEL', KEYS[2], id)
rcall('ZREM', KEYS[3], id)
rcall('ZREM', KEYS[4], id)
rcall('HDEL', KEYS[5], id)
rcall('ZREM', KEYS[6], id)
return existed
