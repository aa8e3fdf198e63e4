-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] 'node' | 'compensation', ARGV[3] node id, ARGV[4] outcome: done | dead | skipped,
-- ARGV[5] result JSON (done) or error message (dead), ARGV[6] now (ms), ARGV[7] info JSON {pool, attempts, startedAt}
-- A node (or its compensation) settled. Idempotent: only a queued node settles, so a repeated
-- call (an agent retrying after a crash, the sweep repairing) changes nothing and returns 0.
-- A done node readies each dependent whose last dependency this was; a node skipped while the run
-- runs (its condition was false) does too, unless none of a dependent's dependencies is done (then
-- that one is skipped as well); a dead one stops the run (no new nodes; compensation once the running
-- ones settle). Returns 1 when it changed the run.
--  
--- @include "workflow-lib"

local kind, id, outcome, payload, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
-- What the agent knows of the run of the node (pool, attempts, startedAt): it replaces the claim's {pool}.
local extra = cjson.decode(ARGV[7])

if kind == 'compensation' then
  if rcall('HGET', CSTATE, id) ~= 'queued' then return 0 end
  local failed = outcome ~= 'done'
  rcall('HSET', CSTATE, id, failed and 'failed' or 'done')
  rcall('HINCRBY', META, 'undoRan', 1)
  if failed then rcall('HINCRBY', META, 'undoFailed', 1) end
  local entry = { node = id, state = failed and 'failed' or 'done', at = tonumber(now), pool = extra.pool, attempts = extra.attempts }
  if failed then entry.error = payload end
  rcall('RPUSH', LOG, cjson.encode(entry))
  rcall('HINCRBY', META, 'undoPending', -1)
  local free = {}
  for _, p in ipairs(split(rcall('HGET', PREV, id))) do
    if rcall('HGET', STATE, p) == 'done' and rcall('HINCRBY', CWAIT, p, -1) == 0 then free[#free + 1] = p end
  end
  readyCompensations(free)
  if tonumber(rcall('HGET', META, 'undoPending')) <= 0 and rcall('HGET', META, 'state') == 'compensating' then finish(now) end
  wake()
  return 1
end

if rcall('HGET', STATE, id) ~= 'queued' then return 0 end
-- Counts: the node leaves 'queued' (inflight, just below) for the state it settles in.
local m = rcall('HMGET', META, 'state', 'total')
local run = m[1]
extra.finishedAt = tonumber(now)
local inflight = rcall('HINCRBY', META, 'inflight', -1)
local woke = false

if outcome == 'done' then
  rcall('HSET', STATE, id, 'done')
  rcall('HSET', RESULTS, id, payload)
  local done = rcall('HINCRBY', META, 'done', 1)
  if run == 'running' then
    local ready = {}
    for _, d in ipairs(split(rcall('HGET', NEXT, id))) do
      if rcall('HINCRBY', WAIT, d, -1) == 0 then ready[#ready + 1] = d end
    end
    if #ready > 0 then
      hsetAll(STATE, ready, 'ready')
      saddAll(READY, ready)
      recount('pending', 'ready', #ready)
      woke = true
    end
    if done + tonumber(rcall('HGET', META, 'skipped') or '0') >= tonumber(m[2]) then
      rcall('HSET', META, 'state', 'completed', 'finishedAt', now)
      woke = true
    end
  end
elseif outcome == 'skipped' then
  rcall('HSET', STATE, id, 'skipped')
  recount(nil, 'skipped', 1)
  extra.finishedAt = nil
  if run == 'running' then
    -- Skipped by its condition: its dependents go on without it; one whose dependencies were all
    -- skipped is skipped too, and so on down the graph.
    local ready = skipOnward(id)
    if #ready > 0 then
      hsetAll(STATE, ready, 'ready')
      saddAll(READY, ready)
      recount('pending', 'ready', #ready)
    end
    local c = rcall('HMGET', META, 'done', 'skipped')
    if tonumber(c[1] or '0') + tonumber(c[2] or '0') >= tonumber(m[2]) then
      rcall('HSET', META, 'state', 'completed', 'finishedAt', now)
    end
    woke = true
  end
else
  extra.error = payload
  local final = run == 'cancelling' and 'cancelled' or 'dead'
  rcall('HSET', STATE, id, final)
  recount(nil, final, 1)
  if run == 'running' then
    rcall('HSET', META, 'state', 'failing', 'cause', 'failure', 'reason', 'node ' .. id .. ' failed: ' .. payload)
    run = 'failing'
  end
end
rcall('HSET', INFO, id, cjson.encode(extra))
if run == 'failing' or run == 'cancelling' then
  -- The engine takes back queued nodes that have not started; once none runs, compensation begins.
  if inflight <= 0 then beginCompensation(now) end
  woke = true
end
if woke then wake() end
return 1
