-- KEYS[1] definitions hash, KEYS[2] due zset, KEYS[3] index zset (id -> created at)
-- ARGV[1] schedule id, ARGV[2] its definition (JSON), ARGV[3] its next tick ('' for none: paused or
-- ended), ARGV[4] 'create' | 'update', ARGV[5] created at (ms)
-- Writes a schedule and its next tick together. `create` refuses a taken id (returns 0); `update`
-- refuses a schedule deleted meanwhile (returns 0). Returns 1 when written.
--  
local defs, due, index = KEYS[1], KEYS[2], KEYS[3]
local id, json, nextTick, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rcall = redis.call

local exists = rcall('HEXISTS', defs, id) == 1
if (mode == 'create') == exists then return 0 end
rcall('HSET', defs, id, json)
if mode == 'create' then rcall('ZADD', index, ARGV[5], id) end
if nextTick == '' then rcall('ZREM', due, id) else rcall('ZADD', due, nextTick, id) end
return 1
