-- KEYS[1] agent hash
-- Marks a live agent as draining (it finishes what it has and takes nothing new).
-- Returns 1 if the agent exists, else 0 (and writes nothing).
--  
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'draining', '1')
return 1
