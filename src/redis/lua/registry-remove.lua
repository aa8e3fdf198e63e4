-- KEYS[1] agent hash, KEYS[2] expiry zset, KEYS[3..n] index sets of the agent
-- ARGV[1] agent id, ARGV[2] only-if-expired-by ms ('' = remove unconditionally)
-- Removes an agent and its index entries. With ARGV[2], does nothing if the agent heartbeated
-- since the caller looked (its expiry moved past ARGV[2]). Returns 1 if it removed an agent, 0 if there was none (or it was alive).
--  
if ARGV[2] ~= '' then
  local expires = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if expires and tonumber(expires) > tonumber(ARGV[2]) then return 0 end
end
local removed = redis.call('DEL', KEYS[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
if removed > 0 then return 1 end
return 0
