-- KEYS[1] the workflow nodes' timers: zset "<run id>\t<node id>" -> when it is due (ms)
-- ARGV[1] now (ms), ARGV[2] lease (ms), ARGV[3] most to claim
-- Claims the timers that are due, each for one caller until its lease ends: its score becomes the
-- lease's end, so a caller that dies while handling it leaves it to be claimed again then (handling
-- is idempotent). Returns member, due time, member, due time, ...
local now, lease, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], now + lease, due[i]) end
return due
