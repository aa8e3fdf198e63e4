-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] node id, ARGV[3] concurrency, ARGV[4] failures tolerated, ARGV[5] now (ms),
-- ARGV[6..] the items' payloads JSON, in order
-- Claims a ready map node (as workflow-claim.lua claims a node: only while the run runs and the node is
-- ready, so two engines never start it twice), writes its items and starts the first ones. Returns
-- {first, count, payloads...} of the items to add as tasks, or {-1} when it was not claimed.
--  
--- @include "workflow-lib"
--- @include "workflow-map-lib"

local node, now = ARGV[2], tonumber(ARGV[5])
if rcall('HGET', META, 'state') ~= 'running' or rcall('HGET', STATE, node) ~= 'ready' then return { -1 } end
rcall('HSET', STATE, node, 'queued')
rcall('SREM', READY, node)
recount('ready', 'inflight', 1)
local n = #ARGV - 5
rcall('HSET', MAP, node .. ':n', n, node .. ':next', 0, node .. ':tolerate', ARGV[4], node .. ':conc', ARGV[3])
for i = 0, n - 1, 500 do
  local args = {}
  for j = i, math.min(i + 499, n - 1) do
    args[#args + 1] = node .. ':' .. j
    args[#args + 1] = ARGV[6 + j]
  end
  rcall('HSET', ITEMS, unpack(args))
end
local c = mapCounts(node)
rcall('HSET', INFO, node, cjson.encode(mapInfo(c, now)))
return mapTake(node, c)
