-- KEYS[1] run base key
-- ARGV[1] engine channel, ARGV[2] now (ms), ARGV[3] reason
-- Cancels a run: no node starts any more, and once the running ones settle, the completed ones
-- are compensated and the run ends `cancelled` (the engine takes back queued nodes that have not
-- started and aborts the others). Returns the state before ('' for no run); a finished run is left as it is.
--  
--- @include "workflow-lib"
--- @include "workflow-states"

local now = ARGV[2]
local run = rcall('HGET', META, 'state')
if not run then return '' end
if FINAL_RUN_STATE[run] then return run end
rcall('HSET', META, 'cause', 'cancel')
if run == 'running' or run == 'failing' then
  rcall('HSET', META, 'state', 'cancelling', 'reason', ARGV[3])
end
maybeBeginCompensation(now)
wake()
return run
