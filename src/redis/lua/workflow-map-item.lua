-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] node id, ARGV[3] item index, ARGV[4] outcome: done | dead | skipped (taken
-- back), ARGV[5] result JSON (done) or error message (dead), ARGV[6] now (ms)
-- An item of a queued map node settled, once (a repeated call returns 0). While the run runs: the
-- map's last item settles the node done with every item's result in order; an item failing beyond
-- the failures tolerated stops the map starting items, and it fails once its running items settled;
-- else the next items its concurrency allows are started, and returned for the caller (the agent that
-- ran this item) to add as tasks. When the run stops, the map settles skipped once no item of it runs.
-- Returns {0} (settled before), {1, first, count, payloads...} (the next items, count 0 for none), or
-- {2}, {3}, {4} when the item settled the map done, dead or skipped.
--  
--- @include "workflow-lib"
--- @include "workflow-map-lib"

local node, item, outcome, payload, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if rcall('HGET', STATE, node) ~= 'queued' then return { 0 } end
if rcall('HSETNX', OUT, node .. ':' .. item, outcome == 'done' and payload or 'null') == 0 then return { 0 } end
rcall('HINCRBY', MAP, node .. (outcome == 'done' and ':done' or outcome == 'dead' and ':failed' or ':taken'), 1)
local c = mapCounts(node)
if outcome == 'dead' and c.failed > c.tolerate and not c.error then
  c.error = 'item ' .. item .. ' failed: ' .. payload
  rcall('HSET', MAP, node .. ':error', c.error)
end
local run = rcall('HGET', META, 'state')
local function info() return mapInfo(c, cjson.decode(rcall('HGET', INFO, node) or '{}').startedAt) end
if run ~= 'running' then
  if c.running > 0 then return { 1 } end
  mapForget(node, c.n)
  return { settleNode(node, 'skipped', '', info(), now) + 3 }
end
if c.error then
  if c.running > 0 then return { 1 } end
  mapForget(node, c.n)
  return { settleNode(node, 'dead', c.error, info(), now) + 2 }
end
if c.done + c.failed >= c.n then
  local result = mapResult(node, c.n)
  mapForget(node, c.n)
  return { settleNode(node, 'done', result, info(), now) + 1 }
end
-- The slot this item freed goes to the next item at once: the caller adds it as a task.
local took = mapTake(node, c)
local out = { 1 }
for i = 1, #took do out[#out + 1] = took[i] end
return out
