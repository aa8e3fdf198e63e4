-- KEYS[1] lock key
-- ARGV[1] owner, ARGV[2] ttl ms
-- Takes the lock if free, or renews it if the caller already holds it. Returns 1 if held, else 0.
--  
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
