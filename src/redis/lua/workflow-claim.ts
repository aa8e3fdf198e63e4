/**
 * KEYS[1] run base key
 * ARGV[1] engine channel, ARGV[2] 'node' | 'undo', ARGV[3..] pairs of node id and the pool chosen for it
 * Claims ready nodes (or compensations) for enqueueing: only those still ready, and only while the
 * run is in the phase that runs them, so two engines never enqueue one node twice. A claimed node
 * is `queued` and counted in flight until it settles. Returns the claimed node ids.
 */
import { lib } from './workflow-lib.ts';

export const lua = `${lib}
local kind = ARGV[2]
local run = rcall('HGET', META, 'state')
local claimed = {}
if kind == 'node' then
  if run ~= 'running' then return claimed end
  for i = 3, #ARGV, 2 do
    local id = ARGV[i]
    if rcall('HGET', STATE, id) == 'ready' then
      rcall('HSET', STATE, id, 'queued')
      rcall('SREM', READY, id)
      local info = readInfo(id)
      info.pool = ARGV[i + 1]
      rcall('HSET', INFO, id, cjson.encode(info))
      rcall('HINCRBY', META, 'inflight', 1)
      claimed[#claimed + 1] = id
    end
  end
else
  if run ~= 'compensating' then return claimed end
  for i = 3, #ARGV, 2 do
    local id = ARGV[i]
    if rcall('HGET', USTATE, id) == 'ready' then
      rcall('HSET', USTATE, id, 'queued')
      rcall('SREM', UREADY, id)
      claimed[#claimed + 1] = id
    end
  end
end
return claimed
`;
