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

return settleNode(id, outcome, payload, extra, now)
