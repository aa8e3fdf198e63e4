/** Every Lua script Switchyard runs, each one atomic operation (sources in ./lua/<name>.lua, KEYS/ARGV in their headers). */
import { defineScript, luaSource } from './script.ts';
import { FINAL_RUN_STATES } from '../model/workflow-states.ts';

/** The include `workflow-states`: the run states the scripts test for, written from the model's lists (one source). */
export const GENERATED_LUA = {
  'workflow-states': `-- written by src/redis/scripts.ts from src/model/workflow-states.ts
local FINAL_RUN_STATE = { ${FINAL_RUN_STATES.map((s) => `${s} = true`).join(', ')} }
`,
};

export const scripts = {
  breakerRecord: defineScript<string>({ name: 'breaker-record', numberOfKeys: 1, lua: luaSource('breaker-record') }),
  breakerAcquire: defineScript<'CLOSED' | 'PROBE' | 'DENIED'>({ name: 'breaker-acquire', numberOfKeys: 2, lua: luaSource('breaker-acquire') }),
  breakerProbe: defineScript<string>({ name: 'breaker-probe', numberOfKeys: 2, lua: luaSource('breaker-probe') }),
  breakerReset: defineScript<string>({ name: 'breaker-reset', numberOfKeys: 2, lua: luaSource('breaker-reset') }),
  registryRegister: defineScript<number>({ name: 'registry-register', numberOfKeys: -1, lua: luaSource('registry-register') }),
  registryHeartbeat: defineScript<number>({ name: 'registry-heartbeat', numberOfKeys: 2, lua: luaSource('registry-heartbeat') }),
  registryDrain: defineScript<number>({ name: 'registry-drain', numberOfKeys: 1, lua: luaSource('registry-drain') }),
  registryRemove: defineScript<number>({ name: 'registry-remove', numberOfKeys: -1, lua: luaSource('registry-remove') }),
  lockAcquire: defineScript<number>({ name: 'lock-acquire', numberOfKeys: 1, lua: luaSource('lock-acquire') }),
  lockRelease: defineScript<number>({ name: 'lock-release', numberOfKeys: 1, lua: luaSource('lock-release') }),
  rateLimit: defineScript<[0 | 1, number]>({ name: 'rate-limit', numberOfKeys: 1, lua: luaSource('rate-limit') }),
  rateTake: defineScript<[0 | 1, number?, number?]>({ name: 'rate-take', numberOfKeys: -1, lua: luaSource('rate-take') }),
  workflowSettle: defineScript<number>({ name: 'workflow-settle', numberOfKeys: 1, lua: luaSource('workflow-settle', GENERATED_LUA) }),
  workflowClaim: defineScript<string[]>({ name: 'workflow-claim', numberOfKeys: 1, lua: luaSource('workflow-claim', GENERATED_LUA) }),
  debounceReplace: defineScript<number>({ name: 'debounce-replace', numberOfKeys: 3, lua: luaSource('debounce-replace') }),
  scheduleClaim: defineScript<string[]>({ name: 'schedule-claim', numberOfKeys: 3, lua: luaSource('schedule-claim') }),
  scheduleDone: defineScript<number>({ name: 'schedule-done', numberOfKeys: 4, lua: luaSource('schedule-done') }),
  scheduleWrite: defineScript<number>({ name: 'schedule-write', numberOfKeys: 3, lua: luaSource('schedule-write') }),
  scheduleRemove: defineScript<number>({ name: 'schedule-remove', numberOfKeys: 6, lua: luaSource('schedule-remove') }),
  fairTag: defineScript<number[]>({ name: 'fair-tag', numberOfKeys: 3, lua: luaSource('fair-tag') }),
  keySlotTake: defineScript<0 | 1>({ name: 'key-slot-take', numberOfKeys: 1, lua: luaSource('key-slot-take') }),
  keySlotRelease: defineScript<string[]>({ name: 'key-slot-release', numberOfKeys: 1, lua: luaSource('key-slot-release') }),
  keySlotRenew: defineScript<number>({ name: 'key-slot-renew', numberOfKeys: 1, lua: luaSource('key-slot-renew') }),
  workflowSignal: defineScript<[0 | 1 | 2 | 3 | 4, string, string]>({ name: 'workflow-signal', numberOfKeys: 1, lua: luaSource('workflow-signal', GENERATED_LUA) }),
  timerClaim: defineScript<string[]>({ name: 'timer-claim', numberOfKeys: 1, lua: luaSource('timer-claim') }),
  workflowMapStart: defineScript<Array<number | string | null>>({ name: 'workflow-map-start', numberOfKeys: 1, lua: luaSource('workflow-map-start', GENERATED_LUA) }),
  workflowMapTake: defineScript<Array<number | string | null>>({ name: 'workflow-map-take', numberOfKeys: 1, lua: luaSource('workflow-map-take', GENERATED_LUA) }),
  workflowMapItem: defineScript<Array<number | string | null>>({ name: 'workflow-map-item', numberOfKeys: 1, lua: luaSource('workflow-map-item', GENERATED_LUA) }),
  workflowCancel: defineScript<string>({ name: 'workflow-cancel', numberOfKeys: 1, lua: luaSource('workflow-cancel', GENERATED_LUA) }),
  jobBatchAdd: defineScript<string[]>({ name: 'job-batch-add', numberOfKeys: 9, lua: luaSource('job-batch-add') }),
  jobBatchTake: defineScript<Array<number | string | string[]>>({ name: 'job-batch-take', numberOfKeys: 11, lua: luaSource('job-batch-take') }),
  jobBatchComplete: defineScript<number[]>({ name: 'job-batch-complete', numberOfKeys: 8, lua: luaSource('job-batch-complete') }),
} as const;
