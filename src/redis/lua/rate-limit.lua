-- KEYS[1] the client's rate key (a GCRA bucket, see gcra-lib)
-- ARGV[1] ms per task (1000 / rate), ARGV[2] burst (tasks), ARGV[3] cost (tasks in this request)
-- Returns {1, remaining} when admitted (and records the cost), {0, waitMs} when the client must wait
-- waitMs before this request fits.
--- @include "gcra-lib"
local now = serverNowMs()
local per, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local nextTat, allowAt = gcra(KEYS[1], per, burst, tonumber(ARGV[3]), now)
if allowAt > now then
  return {0, math.ceil(allowAt - now)}
end
gcraCommit(KEYS[1], nextTat, now)
return {1, math.floor((now - allowAt) / per)}
