-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] node id
-- A map node in the run's ready set: `{-1}` if it is ready to start (workflow-map-start.lua), else it
-- is running and asks for more items: leaves the ready set and starts the next items its concurrency
-- allows while the run runs. Returns {first, count, payloads...} of the items to add as tasks.
--  
--- @include "workflow-lib"
--- @include "workflow-map-lib"

local node = ARGV[2]
local state = rcall('HGET', STATE, node)
if state == 'ready' then return { -1 } end
rcall('SREM', READY, node)
if state ~= 'queued' or rcall('HGET', META, 'state') ~= 'running' then return { 0, 0 } end
local c = mapCounts(node)
local took = mapTake(node, c)
if took[2] > 0 then
  c.running = c.running + took[2]
  local info = cjson.decode(rcall('HGET', INFO, node) or '{}')
  rcall('HSET', INFO, node, cjson.encode(mapInfo(c, info.startedAt)))
end
return took
