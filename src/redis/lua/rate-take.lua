-- KEYS[1..n] the buckets every task of the pool takes from (its type's, its pool's: see gcra-lib);
-- with a key rate, then KEYS[n+1] the concurrency key's bucket and KEYS[n+2] the type's reservations
-- (zset task id -> the time its key's token is reserved for)
-- ARGV[1] n, ARGV[2] the task id, then ms per task and burst for each bucket (KEYS order)
-- Returns {1} when the task may start (a token taken from every bucket), {0, waitMs, i} when bucket i
-- has no token for it yet. A key's bucket reserves: a task without a token gets the key's next one
-- and is told to come back then (0, waitMs, n+1); when it does, it starts on that reservation (if
-- the pool's buckets have tokens), so a key's backlog comes back one task per token, not all at once.
-- Reservations of tasks that never came back are dropped after an hour.
--- @include "gcra-lib"
local now = serverNowMs()
local n = tonumber(ARGV[1])
local id = ARGV[2]
local keyed = #KEYS > n
local keyNext
local reserved = false
if keyed then
  local bucket, reservations = KEYS[n + 1], KEYS[n + 2]
  local at = redis.call('ZSCORE', reservations, id)
  if at then
    -- A task back a few ms early (the delayed set's whole ms against this clock) is on time.
    if tonumber(at) > now + 5 then return {0, math.ceil(tonumber(at) - now), n + 1} end
    reserved = true
  else
    local nextTat, allowAt = gcra(bucket, tonumber(ARGV[3 + 2 * n]), tonumber(ARGV[4 + 2 * n]), 1, now)
    if allowAt > now then
      gcraCommit(bucket, nextTat, now)
      redis.call('ZADD', reservations, allowAt, id)
      redis.call('ZREMRANGEBYSCORE', reservations, '-inf', now - 3600000)
      return {0, math.ceil(allowAt - now), n + 1}
    end
    keyNext = nextTat
  end
end
local wait, worst = 0, 0
local next = {}
for i = 1, n do
  local nextTat, allowAt = gcra(KEYS[i], tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i]), 1, now)
  next[i] = nextTat
  if allowAt - now > wait then wait, worst = allowAt - now, i end
end
if worst > 0 then return {0, math.ceil(wait), worst} end
for i = 1, n do gcraCommit(KEYS[i], next[i], now) end
if reserved then redis.call('ZREM', KEYS[n + 2], id) elseif keyed then gcraCommit(KEYS[n + 1], keyNext, now) end
return {1}
