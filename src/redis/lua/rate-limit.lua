-- KEYS[1..n] the buckets (one cluster slot: the same hash tag)
-- ARGV[1] cost (tasks in this request), then for each bucket: ms per task (1000 / rate), burst (tasks)
-- Returns {1, remaining} when admitted (remaining: what the first bucket could still take at once),
-- {0, waitMs, i} when bucket i (the one that waits longest) must wait waitMs before the request fits.
--
-- Token buckets (GCRA, generic cell rate algorithm): one key per bucket holding its theoretical
-- arrival time (ms, as a string); no counters to reset, exact waits. Uses the server's clock, so every
-- process agrees. A request takes `cost` from every bucket given, or from none.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cost = tonumber(ARGV[1])
local wait, worst = 0, 0
local next = {}
for i = 1, #KEYS do
  local per = tonumber(ARGV[2 * i])
  local window = per * tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat < now then tat = now end
  next[i] = tat + cost * per
  local allowAt = next[i] - window
  if allowAt - now > wait then
    wait, worst = allowAt - now, i
  end
end
if worst > 0 then return {0, math.ceil(wait), worst} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%.3f', next[i]), 'PX', math.max(1, math.ceil(next[i] - now)))
end
local per, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
return {1, math.floor((now - (next[1] - per * burst)) / per)}
