-- KEYS[1] wait, KEYS[2] meta, KEYS[3] id, KEYS[4] prioritized, KEYS[5] completed, KEYS[6] active,
-- KEYS[7] events, KEYS[8] marker, KEYS[9] pc (all BullMQ's, of one queue)
-- ARGV[1] key prefix, ARGV[2..] per job: id, name, data (JSON), opts (BullMQ's stored form, as JSON),
-- timestamp (ms).
-- Returns the ids, in order.
--
-- Adds many jobs to one BullMQ queue in one call, each as BullMQ's addStandardJob-9 or
-- addPrioritizedJob-9 (the version package.json pins) adds a job with a custom id and no parent, delay,
-- deduplication or repeat (the jobs Switchyard writes), with the steps that concern the queue (the id
-- counter, max events, paused or maxed, the base marker) done once.
-- Per job: EXISTS; then HMSET + XADD added (BullMQ's storeJob), and XADD waiting; once: the wait list's
-- LPUSH of all the new ids in order, and the marker. A job whose id exists is not added: as BullMQ
-- answers a duplicate (HGET parentKey, XADD duplicated), its id is answered.
local rcall = redis.call
local waitKey, metaKey, idKey, prioritizedKey, completedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local activeKey, eventsKey, markerKey, pcKey = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local prefix = ARGV[1]

--- @include "bullmq:includes/getOrSetMaxEvents"
--- @include "bullmq:includes/isQueuePausedOrMaxed"
--- @include "bullmq:includes/storeJob"
--- @include "bullmq:includes/getPriorityScore"
--- @include "bullmq:includes/addBaseMarkerIfNeeded"

local n = (#ARGV - 1) / 5
-- Each of BullMQ's adds counts in the queue's id counter, custom id or not.
rcall("INCRBY", idKey, n)
local maxEvents = getOrSetMaxEvents(metaKey)
local isPausedOrMaxed = isQueuePausedOrMaxed(metaKey, activeKey)

local ids, waiting, added = {}, {}, 0
for i = 1, n do
  local at = 2 + (i - 1) * 5
  local jobId, name, data, timestamp = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 4]
  local jobIdKey = prefix .. jobId
  if rcall("EXISTS", jobIdKey) == 1 then
    -- handleDuplicatedJob for a job without a parent: nothing to attach, the duplicate is told.
    rcall("HGET", jobIdKey, "parentKey")
    rcall("XADD", eventsKey, "MAXLEN", "~", maxEvents, "*", "event", "duplicated", "jobId", jobId)
  else
    local _, priority = storeJob(eventsKey, jobIdKey, jobId, name, data, cjson.decode(ARGV[at + 3]), timestamp, nil, nil, nil)
    if priority > 0 then
      rcall("ZADD", prioritizedKey, getPriorityScore(priority, pcKey), jobId)
    else
      waiting[#waiting + 1] = jobId
    end
    rcall("XADD", eventsKey, "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", jobId)
    added = added + 1
  end
  ids[i] = jobId
end
-- One LPUSH leaves the list as one LPUSH per job would.
for i = 1, #waiting, 5000 do rcall("LPUSH", waitKey, unpack(waiting, i, math.min(i + 4999, #waiting))) end
if added > 0 then addBaseMarkerIfNeeded(markerKey, isPausedOrMaxed) end
return ids
