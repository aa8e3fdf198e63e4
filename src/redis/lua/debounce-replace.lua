-- KEYS[1] the pool queue's delayed zset, KEYS[2] the task's job hash, KEYS[3] the queue's marker zset
-- ARGV[1] job id, ARGV[2] the job's data as read (JSON), ARGV[3] its new data (JSON), ARGV[4] its new
-- due time (ms), ARGV[5] its new `delay` (due time - its timestamp)
-- Debounce: a debounced task that has not started yet takes a later request's data and runs later.
-- Compare and set: only while the job is still delayed and its data is what the caller read, so a
-- task that started meanwhile keeps what it runs with. Returns 1 when replaced, -1 when the job does
-- not exist (yet: the request that made it may still be adding it), -3 when it left the delayed set
-- or its data changed (the caller starts a new task).
--  
local rcall = redis.call
local delayed, job, marker = KEYS[1], KEYS[2], KEYS[3]
if rcall('EXISTS', job) == 0 then return -1 end
if not rcall('ZSCORE', delayed, ARGV[1]) then return -3 end
if rcall('HGET', job, 'data') ~= ARGV[2] then return -3 end
local due = tonumber(ARGV[4])
-- BullMQ's delayed score: the due time x 0x1000, plus a counter that keeps jobs due the same ms in order.
local last = rcall('ZREVRANGEBYSCORE', delayed, (due + 1) * 0x1000 - 1, due * 0x1000, 'WITHSCORES', 'LIMIT', 0, 1)
local score = due * 0x1000
if last[2] then score = math.min(tonumber(last[2]) + 1, (due + 1) * 0x1000 - 1) end
rcall('ZADD', delayed, score, ARGV[1])
rcall('HSET', job, 'data', ARGV[3], 'delay', ARGV[5])
-- As BullMQ does after moving a delayed job: the marker holds the earliest due time, for blocked workers.
local first = rcall('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if first[2] then rcall('ZADD', marker, tonumber(first[2]) / 0x1000, '1') end
return 1
