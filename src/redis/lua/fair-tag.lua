-- KEYS[1] the queue's prioritized zset (BullMQ: score = priority * 2^32 + a counter)
-- KEYS[2] the queue's delayed zset (retries and held tasks keep their priority in their hash)
-- KEYS[3] the queue's fair order: zset concurrency key -> the last tag given to its tasks
-- ARGV[1] the queue's job key prefix (`<prefix>:{<type>.<pool>}:`), ARGV[2] rebase above this tag,
-- ARGV[3..] the concurrency key of each task being written, in order.
-- Returns the tags, in that order.
--
-- Start-time fair queuing between concurrency keys, on one pool queue. A keyed task's tag is one past
-- the later of its key's last tag and the tag at the head of the queue (the queue's virtual time), and
-- the tag is the task's BullMQ priority: a key that arrives behind another key's backlog of 20 000
-- takes turns with it instead of waiting for all of it. Unkeyed tasks are untouched (no priority: they
-- go first, as BullMQ runs its wait list before its prioritized set).
--
-- Tags only grow while the queue never drains; BullMQ takes priorities up to 2^21 - 1. When the head
-- passes ARGV[2], every waiting and delayed task's priority (and every key's last tag) is lowered by
-- the same amount, which keeps their order: O(tasks waiting), once per ARGV[2] tags.
local rcall = redis.call
local SHIFT = 4294967296
local head = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local v = 0
if head[2] then v = math.floor(tonumber(head[2]) / SHIFT) end
if v == 0 then
  -- Nothing keyed waits: every key starts level again.
  rcall('DEL', KEYS[3])
else
  if v > tonumber(ARGV[2]) then
    local down = v - 1
    local waiting = rcall('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    for i = 1, #waiting, 2 do
      local id = waiting[i]
      local score = tonumber(waiting[i + 1])
      rcall('ZADD', KEYS[1], score - down * SHIFT, id)
      rcall('HSET', ARGV[1] .. id, 'priority', math.floor(score / SHIFT) - down)
    end
    local delayed = rcall('ZRANGE', KEYS[2], 0, -1)
    for _, id in ipairs(delayed) do
      local p = tonumber(rcall('HGET', ARGV[1] .. id, 'priority') or 0)
      if p > down then rcall('HSET', ARGV[1] .. id, 'priority', p - down) end
    end
    local lasts = rcall('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
    for i = 1, #lasts, 2 do
      rcall('ZADD', KEYS[3], math.max(0, tonumber(lasts[i + 1]) - down), lasts[i])
    end
    v = v - down
  end
  -- A key whose last tag is behind the head is level with a new one: forget it.
  rcall('ZREMRANGEBYSCORE', KEYS[3], '-inf', v)
end
local tags = {}
for i = 3, #ARGV do
  local last = tonumber(rcall('ZSCORE', KEYS[3], ARGV[i]) or 0)
  local tag = math.max(v, last) + 1
  rcall('ZADD', KEYS[3], tag, ARGV[i])
  tags[#tags + 1] = tag
end
return tags
