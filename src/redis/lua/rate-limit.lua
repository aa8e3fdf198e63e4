-- KEYS[1] the client's rate key (its theoretical arrival time, ms, as a string)
-- ARGV[1] ms per task (1000 / rate), ARGV[2] burst (tasks), ARGV[3] cost (tasks in this request)
-- GCRA (generic cell rate algorithm): one key per client, no counters to reset, exact waits.
-- Uses the server's clock, so every API process agrees. Returns {1, remaining} when admitted
-- (and records the cost), {0, waitMs} when the client must wait waitMs before this request fits.
--  
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local per = tonumber(ARGV[1])
local window = per * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local nextTat = tat + tonumber(ARGV[3]) * per
local allowAt = nextTat - window
if allowAt > now then
  return {0, math.ceil(allowAt - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.max(1, math.ceil(nextTat - now)))
return {1, math.floor((now - allowAt) / per)}
