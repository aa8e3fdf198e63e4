-- KEYS[1..11] BullMQ's moveToActive-11's: wait, active, prioritized, events, stalled, limiter, delayed,
-- paused, meta, pc, marker
-- ARGV[1] key prefix, ARGV[2] timestamp (ms), ARGV[3] lock duration (ms), ARGV[4] worker name ('' for
-- none), ARGV[5] owner of a local queue the jobs go to ('' for none), ARGV[6] the first job's place in it,
-- ARGV[7] how long its start mark lives (ms), ARGV[8..] one lock token per job wanted.
-- Returns { rate-limit pttl, next delayed timestamp, id1, hash1 (HGETALL's flat list), id2, hash2, ... };
-- job i holds token i. Ids whose job hash is gone are dropped from active and skipped (token unused).
--
-- Moves up to n ready jobs of a BullMQ queue to active in one call, each with its own lock token:
-- BullMQ's moveToActive-11 (the version package.json pins) as n calls in a row would leave the queue,
-- with the queue-level steps (its metadata, promoting due delayed jobs, the rate limit, the base
-- marker) done once. Jobs are taken from wait first, then from prioritized, as n calls would.
-- Per job: HGETALL, SET lock PX, XADD active, HSET processedOn + ats + pb (the reply patched to match);
-- BullMQ's prepareJobForProcessing also HINCRBYs ats and adds the base marker per job.
-- A queue whose metadata sets a rate limit takes one job per call, counted by BullMQ's limiter; a
-- global concurrency caps n by the room left in active.
--
-- A local queue's jobs are locked and in active before their handlers run, so when its process dies
-- BullMQ's stalled check counts a stall (stc) against each one, started or not. Each job taken for a
-- local queue records where it went (field sytk: owner|place|stc|processedOn); the owner marks how
-- far its handlers have got (key <prefix>sy:started:<owner>: places below it were handed to a
-- handler, src/agent/batched-worker.ts). A job taken again whose record still holds (processedOn
-- unchanged: no other fetch since) and which stalled once since (stc one more) is given that stall
-- back when its place was never reached: stc and ats as before the fetch, and BullMQ's stall-limit
-- failure (defa) lifted.
local rcall = redis.call
local waitKey, activeKey, prioritizedKey, eventStreamKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local rateLimiterKey, delayedKey, metaKey, pcKey, markerKey = KEYS[6], KEYS[7], KEYS[9], KEYS[10], KEYS[11]
local prefix, now, lockDuration, name = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local owner, firstPlace, markMs = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local TOKENS = 7
local STALL_LIMIT = "job stalled more than allowable limit"

--- @include "bullmq:includes/getQueueMetadata"
--- @include "bullmq:includes/getNextDelayedTimestamp"
--- @include "bullmq:includes/getRateLimitTTL"
--- @include "bullmq:includes/promoteDelayedJobs"

local isPausedOrMaxed, rateLimitMax, rateLimitDuration = getQueueMetadata(metaKey, activeKey, waitKey)
promoteDelayedJobs(delayedKey, markerKey, waitKey, prioritizedKey, eventStreamKey, prefix, now, pcKey, isPausedOrMaxed)

local maxJobs = tonumber(rateLimitMax)
local expireTime = getRateLimitTTL(maxJobs, rateLimiterKey)
if expireTime > 0 then return {expireTime, 0} end
if isPausedOrMaxed then return {0, 0} end

local room = #ARGV - TOKENS
if maxJobs then room = 1 end
local concurrency = tonumber(rcall("HGET", metaKey, "concurrency"))
if concurrency then room = math.min(room, concurrency - rcall("LLEN", activeKey)) end

-- Take the ids: wait's tail first (RPOPLPUSH's order), then the lowest scores of prioritized.
local ids = {}
if room > 0 then
  local popped = rcall("RPOP", waitKey, room)
  if popped then
    for _, id in ipairs(popped) do
      -- Markers in the wait list (BullMQ < 5) are dropped, as moveToActive drops them.
      if string.sub(id, 1, 2) ~= "0:" then ids[#ids + 1] = id end
    end
  end
end
if #ids < room then
  local want = room - #ids
  local prioritized = rcall("ZPOPMIN", prioritizedKey, want)
  for i = 1, #prioritized, 2 do ids[#ids + 1] = prioritized[i] end
  -- n single calls would have found the set empty once: its counter goes, as moveJobFromPrioritizedToActive does.
  if #prioritized / 2 < want then rcall("DEL", pcKey) end
end

if #ids == 0 then
  return {0, getNextDelayedTimestamp(delayedKey) or 0}
end
-- One LPUSH leaves active as n RPOPLPUSH/LPUSH calls would: the last taken at the head.
for i = 1, #ids, 5000 do rcall("LPUSH", activeKey, unpack(ids, i, math.min(i + 4999, #ids))) end

-- How far each local queue's owner has handed jobs to handlers (false: unknown, so no stall is given back).
local reached = {}
local function reachedBy(who)
  if reached[who] == nil then reached[who] = tonumber(rcall("GET", prefix .. "sy:started:" .. who)) or false end
  return reached[who]
end

if owner ~= "" then rcall("SET", prefix .. "sy:started:" .. owner, firstPlace, "NX", "PX", markMs) end

local reply = {0, 0}
local limited = 0
local place = firstPlace
for i, jobId in ipairs(ids) do
  local jobKey = prefix .. jobId
  local hash = rcall("HGETALL", jobKey)
  if #hash == 0 then
    rcall("LREM", activeKey, -1, jobId)
  else
    local ats, atsAt, processedAt, pbAt, stc, stcAt, takeAt, defaAt = 0, nil, nil, nil, 0, nil, nil, nil
    for f = 1, #hash, 2 do
      local field = hash[f]
      if field == "ats" then ats = tonumber(hash[f + 1]) or 0; atsAt = f + 1
      elseif field == "processedOn" then processedAt = f + 1
      elseif field == "pb" then pbAt = f + 1
      elseif field == "stc" then stc = tonumber(hash[f + 1]) or 0; stcAt = f + 1
      elseif field == "sytk" then takeAt = f + 1
      elseif field == "defa" then defaAt = f + 1 end
    end
    -- A stall while it waited, never started, in a local queue whose process died: given back.
    local refund = false
    if takeAt and stc > 0 and processedAt then
      local who, at, stcThen, on = string.match(hash[takeAt], "^(.+)|(%d+)|(%d+)|(%d+)$")
      if who and on == hash[processedAt] and tonumber(stcThen) + 1 == stc then
        local upTo = reachedBy(who)
        refund = upTo and tonumber(at) >= upTo
      end
    end
    local lifted = refund and defaAt and hash[defaAt] == STALL_LIMIT
    if refund then
      stc = stc - 1
      ats = ats - 1
      hash[stcAt] = tostring(stc)
      if lifted then rcall("HDEL", jobKey, "defa") end
    end
    if maxJobs and (lifted or not defaAt) then limited = limited + 1 end
    ats = ats + 1
    rcall("SET", jobKey .. ":lock", ARGV[TOKENS + i], "PX", lockDuration)
    rcall("XADD", eventStreamKey, "*", "event", "active", "jobId", jobId, "prev", "waiting")
    local fields = {"processedOn", now, "ats", ats}
    if name ~= "" then fields[#fields + 1] = "pb"; fields[#fields + 1] = name end
    if refund then fields[#fields + 1] = "stc"; fields[#fields + 1] = stc end
    if owner ~= "" then
      fields[#fields + 1] = "sytk"; fields[#fields + 1] = owner .. "|" .. place .. "|" .. stc .. "|" .. now
      place = place + 1
    end
    rcall("HSET", jobKey, unpack(fields))
    if atsAt then hash[atsAt] = tostring(ats) else hash[#hash + 1] = "ats"; hash[#hash + 1] = tostring(ats) end
    if processedAt then hash[processedAt] = now else hash[#hash + 1] = "processedOn"; hash[#hash + 1] = now end
    if name ~= "" then
      if pbAt then hash[pbAt] = name else hash[#hash + 1] = "pb"; hash[#hash + 1] = name end
    end
    -- Last, as it shifts the fields after it.
    if lifted then table.remove(hash, defaAt); table.remove(hash, defaAt - 1) end
    reply[#reply + 1] = jobId
    reply[#reply + 1] = hash
  end
end

-- BullMQ's limiter counts each job it moves (a deferred failure's excepted), the window set by the first.
if limited > 0 then
  if rcall("INCRBY", rateLimiterKey, limited) == limited then
    rcall("PEXPIRE", rateLimiterKey, math.floor(math.abs(tonumber(rateLimitDuration) or 0)))
  end
end
-- Others may find work too (prepareJobForProcessing adds it per job).
rcall("ZADD", markerKey, 0, "0")
return reply
