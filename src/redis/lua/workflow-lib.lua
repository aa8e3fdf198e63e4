-- Shared by the workflow scripts (prepended to each). KEYS[1] is the run's base key
-- `<prefix>:{run:<id>}` (its meta hash); every other key of the run is derived from it and shares
-- its hash tag, so each script touches one cluster slot.
--
-- meta hash: state (running | failing | cancelling | compensating | completed | compensated |
--   compensation_failed | failed | cancelled), cause (failure | cancel), total, done, inflight
--   (nodes queued, not settled), pending, ready, dead, skipped, cancelled (nodes in each state: with
--   done and inflight they count every node, so a run's summary never reads its :state hash; every
--   write to :state below moves a count in the same script), undoPending, undoRan, undoFailed,
--   reason, finishedAt
-- :state   node -> pending | ready | queued | done | dead | skipped | cancelled
-- :info    node -> JSON {pool, attempts, startedAt, finishedAt, error}
-- :wait    node -> dependencies not done yet      :next / :prev  node -> "a,b" dependents / dependencies
-- :results node -> result JSON                    :ready  set of nodes ready to be enqueued
-- :undo    set of nodes that have a compensation  :undo-state node -> pending | ready | queued | done | failed | none
-- :undo-wait node -> completed dependents whose compensation has not settled   :undo-ready set
-- :log     list of compensation outcomes, JSON, in the order they settled
-- :signals signal name -> its node               :inbox  signal name -> payload JSON sent before its node was reached
-- ARGV[1] (every script): the pub/sub channel that wakes the engine.
-- Stored names (the :undo* keys, the undo* fields, a compensation job's `.undo` id suffix) keep the
-- older word for a compensation, so runs and jobs already written stay readable; code says compensation.
-- State names are the model's (src/model/workflow-states.ts; tests/unit/lua-states.test.ts holds every
-- literal in the workflow scripts to its lists); the include `workflow-states` is written from them
-- (src/redis/scripts.ts).
--  
local rcall = redis.call
local base = KEYS[1]
local META, STATE, INFO, WAIT = base, base .. ':state', base .. ':info', base .. ':wait'
local NEXT, PREV, RESULTS, READY = base .. ':next', base .. ':prev', base .. ':results', base .. ':ready'
local COMPENSABLE, CSTATE, CWAIT, CREADY, LOG = base .. ':undo', base .. ':undo-state', base .. ':undo-wait', base .. ':undo-ready', base .. ':log'
local SIGNALS, INBOX = base .. ':signals', base .. ':inbox'
local CHANNEL = ARGV[1]
local runId = string.match(base, '{run:(.*)}$')

local function split(s)
  local t = {}
  if s then for x in string.gmatch(s, '[^,]+') do t[#t + 1] = x end end
  return t
end

local function wake() rcall('PUBLISH', CHANNEL, runId) end

-- Moves n nodes from one state's count to another's (see the meta hash above; 'queued' is inflight).
local function recount(from, to, n)
  if n == 0 then return end
  if from then rcall('HINCRBY', META, from, -n) end
  if to then rcall('HINCRBY', META, to, n) end
end

-- HSET key f1 v f2 v ... / SADD key m1 m2 ... for a list of ids, in chunks (unpack has a stack limit).
local function hsetAll(key, ids, value)
  for i = 1, #ids, 500 do
    local args = {}
    for j = i, math.min(i + 499, #ids) do
      args[#args + 1] = ids[j]
      args[#args + 1] = value
    end
    rcall('HSET', key, unpack(args))
  end
end

local function saddAll(key, ids)
  for i = 1, #ids, 1000 do rcall('SADD', key, unpack(ids, i, math.min(i + 999, #ids))) end
end

-- A node skipped while its run runs: each dependent whose last dependency this was becomes ready if
-- one of its dependencies is done, and is skipped (and its own dependents looked at) if none is.
-- Returns the nodes to make ready.
local function skipOnward(id)
  local ready, queue, i = {}, { id }, 1
  while i <= #queue do
    local n = queue[i]
    i = i + 1
    for _, d in ipairs(split(rcall('HGET', NEXT, n))) do
      if rcall('HINCRBY', WAIT, d, -1) == 0 then
        local anyDone = false
        for _, p in ipairs(split(rcall('HGET', PREV, d))) do
          if rcall('HGET', STATE, p) == 'done' then anyDone = true break end
        end
        if anyDone then
          ready[#ready + 1] = d
        else
          rcall('HSET', STATE, d, 'skipped')
          recount('pending', 'skipped', 1)
          queue[#queue + 1] = d
        end
      end
    end
  end
  return ready
end

-- Final state once every compensation settled.
local function finish(now)
  local m = rcall('HMGET', META, 'cause', 'undoRan', 'undoFailed')
  local state = 'failed'
  if m[1] == 'cancel' then state = 'cancelled'
  elseif tonumber(m[3] or '0') > 0 then state = 'compensation_failed'
  elseif tonumber(m[2] or '0') > 0 then state = 'compensated' end
  rcall('HSET', META, 'state', state, 'finishedAt', now)
end

-- Nodes whose completed dependents' compensations have all settled: their own compensation may
-- run now; a node without one settles at once, which may free its dependencies in turn.
local function readyCompensations(list)
  local i = 1
  while i <= #list do
    local n = list[i]
    i = i + 1
    if rcall('SISMEMBER', COMPENSABLE, n) == 1 then
      rcall('HSET', CSTATE, n, 'ready')
      rcall('SADD', CREADY, n)
    else
      rcall('HSET', CSTATE, n, 'none')
      rcall('HINCRBY', META, 'undoPending', -1)
      for _, p in ipairs(split(rcall('HGET', PREV, n))) do
        if rcall('HGET', STATE, p) == 'done' and rcall('HINCRBY', CWAIT, p, -1) == 0 then list[#list + 1] = p end
      end
    end
  end
end

-- Every node has settled after a failure or a cancel: compensate the completed ones, each after
-- the compensations of all completed nodes that depended on it (reverse topological order).
local function beginCompensation(now)
  rcall('HSET', META, 'state', 'compensating')
  rcall('DEL', READY)
  local states = rcall('HGETALL', STATE)
  local done, isDone = {}, {}
  local wasPending, wasReady = 0, 0
  for i = 1, #states, 2 do
    local id, s = states[i], states[i + 1]
    if s == 'done' then
      done[#done + 1] = id
      isDone[id] = true
    elseif s == 'pending' or s == 'ready' then
      rcall('HSET', STATE, id, 'skipped')
      if s == 'pending' then wasPending = wasPending + 1 else wasReady = wasReady + 1 end
    end
  end
  recount('pending', 'skipped', wasPending)
  recount('ready', 'skipped', wasReady)
  rcall('HSET', META, 'undoPending', #done)
  local free = {}
  for _, d in ipairs(done) do
    local n = 0
    for _, c in ipairs(split(rcall('HGET', NEXT, d))) do
      if isDone[c] then n = n + 1 end
    end
    if n > 0 then rcall('HSET', CWAIT, d, n) else free[#free + 1] = d end
  end
  readyCompensations(free)
  if tonumber(rcall('HGET', META, 'undoPending')) == 0 then finish(now) end
end

-- After a node settled while the run is stopping: once nothing runs any more, compensate.
local function maybeBeginCompensation(now)
  local m = rcall('HMGET', META, 'state', 'inflight')
  if (m[1] == 'failing' or m[1] == 'cancelling') and tonumber(m[2] or '0') <= 0 then beginCompensation(now) end
end

-- A node settled (done, dead or skipped; workflow-settle.lua says what each does). Idempotent: only a
-- queued node settles; returns 0 for any other, 1 when it changed the run. `extra`: its info (a table).
-- What every settle ends with: the node's info kept; a stopping run whose last node in flight this
-- was begins compensating; the engine woken when it has something to do. Returns 1.
local function settled(id, extra, run, inflight, woke, now)
  rcall('HSET', INFO, id, cjson.encode(extra))
  if run == 'failing' or run == 'cancelling' then
    -- The engine takes back queued nodes that have not started; once none runs, compensation begins.
    if inflight <= 0 then beginCompensation(now) end
    woke = true
  end
  if woke then wake() end
  return 1
end

-- The common case, a node done, with one read and one write of the meta hash and one write of the
-- states: the node done, and each dependent whose last dependency this was ready (while the run runs).
local function settleDone(id, payload, extra, now)
  local m = rcall('HMGET', META, 'state', 'total', 'inflight', 'done', 'skipped', 'pending', 'ready')
  local run = m[1]
  local inflight, done = tonumber(m[3] or '0') - 1, tonumber(m[4] or '0') + 1
  local meta = { 'inflight', inflight, 'done', done }
  local states = { id, 'done' }
  local ready = {}
  local woke = false
  if run == 'running' then
    for _, d in ipairs(split(rcall('HGET', NEXT, id))) do
      if rcall('HINCRBY', WAIT, d, -1) == 0 then
        ready[#ready + 1] = d
        states[#states + 1] = d
        states[#states + 1] = 'ready'
      end
    end
    if #ready > 0 then
      saddAll(READY, ready)
      meta[#meta + 1], meta[#meta + 2] = 'pending', tonumber(m[6] or '0') - #ready
      meta[#meta + 1], meta[#meta + 2] = 'ready', tonumber(m[7] or '0') + #ready
      woke = true
    end
    if done + tonumber(m[5] or '0') >= tonumber(m[2]) then
      meta[#meta + 1], meta[#meta + 2] = 'state', 'completed'
      meta[#meta + 1], meta[#meta + 2] = 'finishedAt', now
      woke = true
    end
  end
  for i = 1, #states, 1000 do rcall('HSET', STATE, unpack(states, i, math.min(i + 999, #states))) end
  rcall('HSET', RESULTS, id, payload)
  rcall('HSET', META, unpack(meta))
  return settled(id, extra, run, inflight, woke, now)
end

local function settleNode(id, outcome, payload, extra, now)
  if rcall('HGET', STATE, id) ~= 'queued' then return 0 end
  extra.finishedAt = tonumber(now)
  if outcome == 'done' then return settleDone(id, payload, extra, now) end
  -- Counts: the node leaves 'queued' (inflight, just below) for the state it settles in.
  local m = rcall('HMGET', META, 'state', 'total')
  local run = m[1]
  local inflight = rcall('HINCRBY', META, 'inflight', -1)
  local woke = false

  if outcome == 'skipped' then
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
  return settled(id, extra, run, inflight, woke, now)
end
