-- KEYS[1] wait, KEYS[2] active, KEYS[3] prioritized, KEYS[4] events, KEYS[5] stalled, KEYS[6] meta,
-- KEYS[7] completed, KEYS[8] metrics:completed (all BullMQ's, of one queue)
-- ARGV[1] key prefix, ARGV[2] timestamp (ms), ARGV[3] lock duration (ms): a lock found held by another
-- token is put back for this long, ARGV[4] keep: count (-1 keeps all, 0 keeps none, '' unset),
-- ARGV[5] keep: age in seconds ('' for none), ARGV[6] keep: most removals per call by age ('' for
-- BullMQ's 1000), ARGV[7] metrics: max data points ('' when metrics are off), ARGV[8..] per job: id,
-- token, return value (JSON), attempts made after this one.
-- Returns one code per job, in order: 0 committed, -2 no lock, -6 another token's lock, -3 not active.
--
-- Completes many active jobs of one BullMQ queue in one call: each as BullMQ's moveToFinished-14 (the
-- version package.json pins) completes a job with no parent, no children and no deduplication id (the
-- jobs Switchyard writes), with the steps that concern the queue (trimming its events, the kept jobs,
-- metrics, the drained event) done once. Each job's lock is checked first: a job whose lock is missing,
-- or held by another token, is refused and nothing of it is written; the others are committed.
-- Per job: GETDEL lock, HSET returnvalue + finishedOn + atm, XADD completed; once: SREM stalled, the
-- active list rebuilt without them (or LREM each when it is long), ZADD completed.
local rcall = redis.call
local waitKey, activeKey, prioritizedKey, eventStreamKey, stalledKey, metaKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local completedKey, metricsKey = KEYS[7], KEYS[8]
local prefix, now, lockDuration = ARGV[1], ARGV[2], ARGV[3]
local keepCount, keepAge, keepLimit, maxMetricsSize = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]) or 1000, ARGV[7]

--- @include "bullmq:includes/trimEvents"
--- @include "bullmq:includes/removeJobKeys"
--- @include "bullmq:includes/removeJobsByMaxAge"
--- @include "bullmq:includes/removeJobsByMaxCount"
--- @include "bullmq:includes/collectMetrics"

-- The lock check, each job first: a refused job writes nothing.
local codes, held, heldIds = {}, {}, {}
local n = (#ARGV - 7) / 4
for i = 1, n do
  local at = 8 + (i - 1) * 4
  local jobId, token = ARGV[at], ARGV[at + 1]
  local lockKey = prefix .. jobId .. ":lock"
  local lock = rcall("GETDEL", lockKey)
  if not lock then
    codes[i] = -2
  elseif lock ~= token then
    rcall("SET", lockKey, lock, "PX", lockDuration)
    codes[i] = -6
  else
    codes[i] = 0
    held[jobId] = i
    heldIds[#heldIds + 1] = jobId
  end
end
if #heldIds == 0 then return codes end
rcall("SREM", stalledKey, unpack(heldIds))

-- Out of active: one pass over a short list; LREM (from the tail, as BullMQ does) each in a long one.
local activeLen = rcall("LLEN", activeKey)
if activeLen <= 4 * #heldIds + 256 then
  local active = rcall("LRANGE", activeKey, 0, -1)
  local kept, found = {}, {}
  for _, id in ipairs(active) do
    if held[id] and not found[id] then found[id] = true else kept[#kept + 1] = id end
  end
  rcall("DEL", activeKey)
  for i = 1, #kept, 5000 do rcall("RPUSH", activeKey, unpack(kept, i, math.min(i + 4999, #kept))) end
  for _, id in ipairs(heldIds) do if not found[id] then codes[held[id]] = -3; held[id] = nil end end
else
  for _, id in ipairs(heldIds) do
    if rcall("LREM", activeKey, -1, id) < 1 then codes[held[id]] = -3; held[id] = nil end
  end
end

-- Trim before emitting, as moveToFinished does.
trimEvents(metaKey, eventStreamKey)

local scored, done = {}, 0
for i = 1, n do
  if codes[i] == 0 then
    local at = 8 + (i - 1) * 4
    local jobId, value, attemptsMade = ARGV[at], ARGV[at + 2], ARGV[at + 3]
    local jobKey = prefix .. jobId
    done = done + 1
    if keepCount ~= 0 then
      rcall("HSET", jobKey, "returnvalue", value, "finishedOn", now, "atm", attemptsMade)
      scored[#scored + 1] = now
      scored[#scored + 1] = jobId
    else
      removeJobKeys(jobKey)
    end
    rcall("XADD", eventStreamKey, "*", "event", "completed", "jobId", jobId, "returnvalue", value, "prev", "active")
  end
end

if #scored > 0 then
  for i = 1, #scored, 5000 do rcall("ZADD", completedKey, unpack(scored, i, math.min(i + 4999, #scored))) end
  if keepAge ~= nil then removeJobsByMaxAge(now, keepAge, completedKey, prefix, keepLimit) end
  if keepCount ~= nil and keepCount > 0 then removeJobsByMaxCount(keepCount, completedKey, prefix) end
end

if maxMetricsSize ~= "" then
  for _ = 1, done do collectMetrics(metricsKey, metricsKey .. ':data', maxMetricsSize, now) end
end

if rcall("LLEN", waitKey) == 0 and rcall("LLEN", activeKey) == 0 and rcall("ZCARD", prioritizedKey) == 0 then
  rcall("XADD", eventStreamKey, "*", "event", "drained")
end
return codes
