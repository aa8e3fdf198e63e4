-- KEYS[1] definitions hash, KEYS[2] due zset
-- ARGV[1] schedule id, ARGV[2] its definition (JSON), ARGV[3] its next tick ('' for none: paused or
-- ended), ARGV[4] 'create' | 'update'
-- Writes a schedule and its next tick together. `create` refuses a taken id (returns 0); `update`
-- refuses a schedule deleted meanwhile (returns 0). Returns 1 when written.
--  
local defs, due = KEYS[1], KEYS[2]
local id, json, nextTick, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rcall = redis.call

local exists = rcall('HEXISTS', defs, id) == 1
if (mode == 'create') == exists then return 0 end
rcall('HSET', defs, id, json)
if nextTick == '' then rcall('ZREM', due, id) else rcall('ZADD', due, nextTick, id) end
return 1
