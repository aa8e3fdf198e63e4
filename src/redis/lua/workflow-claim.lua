-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] 'node' | 'compensation', ARGV[3..] pairs of node id and its info JSON
-- (what its kind knows at its start: a task's pool; kept in :info until the node settles)
-- Claims ready nodes (or compensations) for enqueueing: only those still ready, and only while the
-- run is in the phase that runs them, so two engines never enqueue one node twice. A claimed node
-- is `queued` and counted in flight until it settles. Returns the claimed node ids.
--  
--- @include "workflow-lib"

local kind = ARGV[2]
local run = rcall('HGET', META, 'state')
local claimed = {}
if kind == 'node' then
  if run ~= 'running' then return claimed end
  local info, ids = {}, {}
  for i = 3, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
  local states = {}
  for i = 1, #ids, 1000 do
    local part = rcall('HMGET', STATE, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #part do states[#states + 1] = part[j] end
  end
  for k, id in ipairs(ids) do
    if states[k] == 'ready' then
      claimed[#claimed + 1] = id
      info[#info + 1] = id
      info[#info + 1] = ARGV[2 + 2 * k]
    end
  end
  if #claimed == 0 then return claimed end
  hsetAll(STATE, claimed, 'queued')
  for i = 1, #claimed, 1000 do rcall('SREM', READY, unpack(claimed, i, math.min(i + 999, #claimed))) end
  for i = 1, #info, 1000 do rcall('HSET', INFO, unpack(info, i, math.min(i + 999, #info))) end
  recount('ready', 'inflight', #claimed)
else
  if run ~= 'compensating' then return claimed end
  for i = 3, #ARGV, 2 do
    local id = ARGV[i]
    if rcall('HGET', CSTATE, id) == 'ready' then claimed[#claimed + 1] = id end
  end
  if #claimed == 0 then return claimed end
  hsetAll(CSTATE, claimed, 'queued')
  for i = 1, #claimed, 1000 do rcall('SREM', CREADY, unpack(claimed, i, math.min(i + 999, #claimed))) end
end
return claimed
