-- KEYS[1] due zset, KEYS[2] claims zset, KEYS[3] claim-ticks hash, KEYS[4] definitions hash
-- ARGV[1] schedule id, ARGV[2] the tick fired, ARGV[3] the next tick ('' for none: ended or gone)
-- Ends a claim: the tick was fired (or skipped), and the schedule's next tick becomes due, unless the
-- schedule was deleted or paused meanwhile, or a change already set its next tick. Returns 0 when the
-- claim was no longer the caller's (its lease ended and another process took the tick), else 1.
--  
local due, claims, ticks, defs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, tick, nextTick = ARGV[1], ARGV[2], ARGV[3]
local rcall = redis.call

if rcall('HGET', ticks, id) ~= tick then return 0 end
rcall('ZREM', claims, id)
rcall('HDEL', ticks, id)
local def = rcall('HGET', defs, id)
if def and nextTick ~= '' and not cjson.decode(def).paused then rcall('ZADD', due, 'NX', nextTick, id) end
return 1
