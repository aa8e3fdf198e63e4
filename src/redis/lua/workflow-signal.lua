-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] signal name, ARGV[3] payload JSON
-- A signal for a run's signal node, exactly once: when the node waits for it, the caller settles it
-- (the settle script lets one settle through); when the node is not reached yet, the payload is kept
-- in the run's inbox (one per name) for the node to take when it is. Returns {code, node id, state}:
-- 0 no such run; 1 no signal node of that name; 2 the node waits (settle it); 3 kept until the node
-- is reached; 4 too late or a second time (the node's state, or `pending` with one already kept).
--  
--- @include "workflow-lib"

if rcall('EXISTS', META) == 0 then return {0, '', ''} end
local id = rcall('HGET', SIGNALS, ARGV[2])
if not id then return {1, '', ''} end
local state = rcall('HGET', STATE, id)
if state == 'queued' then return {2, id, state} end
if (state == 'pending' or state == 'ready') and rcall('HGET', META, 'state') == 'running' then
  if rcall('HSETNX', INBOX, ARGV[2], ARGV[3]) == 1 then return {3, id, state} end
end
return {4, id, state}
