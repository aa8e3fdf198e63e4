-- Shared by the map node's scripts (after workflow-lib). A map node's state, in the run's slot:
-- :map       hash  <node>:n (items), :next (items started so far: item i < next has started),
--                  :done, :failed, :taken (taken back), :tolerate, :conc, :error (why it fails, once it
--                  does); running = next - done - failed - taken
-- :map-items hash  <node>:<i> -> item i's payload JSON (deleted when the map settles)
-- :map-out   hash  <node>:<i> -> item i's result JSON (`null` for a failed or taken-back item); an item
--                  settles once (HSETNX), so a repeated settle changes nothing
--  
local MAP, ITEMS, OUT = base .. ':map', base .. ':map-items', base .. ':map-out'

-- The map's counters: n, next, running, done, failed, tolerate, conc (numbers) and error (or false).
local function mapCounts(node)
  local m = rcall('HMGET', MAP, node .. ':n', node .. ':next', node .. ':done', node .. ':failed', node .. ':taken', node .. ':tolerate', node .. ':conc', node .. ':error')
  local c = { n = tonumber(m[1] or '0'), next = tonumber(m[2] or '0'), done = tonumber(m[3] or '0'), failed = tonumber(m[4] or '0'),
    tolerate = tonumber(m[6] or '0'), conc = tonumber(m[7] or '1'), error = m[8] }
  c.running = c.next - c.done - c.failed - tonumber(m[5] or '0')
  return c
end

-- Starts the next items the map's concurrency allows (none once it fails); returns {first, count, payloads...}.
local function mapTake(node, c)
  local k = math.min(c.conc - c.running, c.n - c.next)
  if c.error or k <= 0 then return { c.next, 0 } end
  rcall('HSET', MAP, node .. ':next', c.next + k)
  local fields = {}
  for i = c.next, c.next + k - 1 do fields[#fields + 1] = node .. ':' .. i end
  local out = { c.next, k }
  local payloads = rcall('HMGET', ITEMS, unpack(fields))
  for i = 1, #payloads do out[#out + 1] = payloads[i] end
  return out
end

-- The map's items as its node's info shows them.
local function mapInfo(c, startedAt)
  return { startedAt = startedAt, items = { total = c.n, done = c.done, failed = c.failed, running = c.running } }
end

-- The map has settled: its items' payloads, results and counters go (the node's result keeps what is needed).
local function mapForget(node, n)
  for i = 0, n - 1, 1000 do
    local fields = {}
    for j = i, math.min(i + 999, n - 1) do fields[#fields + 1] = node .. ':' .. j end
    rcall('HDEL', ITEMS, unpack(fields))
    rcall('HDEL', OUT, unpack(fields))
  end
  rcall('HDEL', MAP, node .. ':n', node .. ':next', node .. ':done', node .. ':failed', node .. ':taken', node .. ':tolerate', node .. ':conc', node .. ':error')
end

-- The items' results in order, as one JSON array.
local function mapResult(node, n)
  local parts = {}
  for i = 0, n - 1, 1000 do
    local fields = {}
    for j = i, math.min(i + 999, n - 1) do fields[#fields + 1] = node .. ':' .. j end
    local vals = rcall('HMGET', OUT, unpack(fields))
    for j = 1, #vals do parts[#parts + 1] = vals[j] or 'null' end
  end
  return '[' .. table.concat(parts, ',') .. ']'
end
