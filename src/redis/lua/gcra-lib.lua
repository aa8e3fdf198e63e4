-- Shared by the rate scripts: GCRA (generic cell rate algorithm) token buckets. A bucket is one key
-- holding its theoretical arrival time (ms, as a string): no counters to reset, exact waits, on the
-- server's clock, so every process agrees.

local function serverNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- What taking `cost` from a bucket of `per` ms per task and `burst` tasks would do at `now`: the
-- bucket's next arrival time, and the time from which the request fits (at or before now: it fits).
local function gcra(key, per, burst, cost, now)
  local tat = tonumber(redis.call('GET', key) or 0)
  if tat < now then tat = now end
  local nextTat = tat + cost * per
  return nextTat, nextTat - per * burst
end

local function gcraCommit(key, nextTat, now)
  redis.call('SET', key, string.format('%.3f', nextTat), 'PX', math.max(1, math.ceil(nextTat - now)))
end
