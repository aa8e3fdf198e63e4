/** Every Lua script Switchyard runs, each one atomic operation (sources in ./lua, KEYS/ARGV in their headers). */
import { defineScript } from './script.ts';
import { lua as breakerAcquire } from './lua/breaker-acquire.ts';
import { lua as breakerProbe } from './lua/breaker-probe.ts';
import { lua as breakerRecord } from './lua/breaker-record.ts';
import { lua as breakerReset } from './lua/breaker-reset.ts';
import { lua as lockAcquire } from './lua/lock-acquire.ts';
import { lua as lockRelease } from './lua/lock-release.ts';
import { lua as rateLimit } from './lua/rate-limit.ts';
import { lua as registryDrain } from './lua/registry-drain.ts';
import { lua as registryHeartbeat } from './lua/registry-heartbeat.ts';
import { lua as registryRegister } from './lua/registry-register.ts';
import { lua as registryRemove } from './lua/registry-remove.ts';
import { lua as workflowCancel } from './lua/workflow-cancel.ts';
import { lua as workflowClaim } from './lua/workflow-claim.ts';
import { lua as workflowSettle } from './lua/workflow-settle.ts';

export const scripts = {
  breakerRecord: defineScript<string>({ name: 'breaker-record', numberOfKeys: 1, lua: breakerRecord }),
  breakerAcquire: defineScript<'CLOSED' | 'PROBE' | 'DENIED'>({ name: 'breaker-acquire', numberOfKeys: 2, lua: breakerAcquire }),
  breakerProbe: defineScript<string>({ name: 'breaker-probe', numberOfKeys: 2, lua: breakerProbe }),
  breakerReset: defineScript<string>({ name: 'breaker-reset', numberOfKeys: 2, lua: breakerReset }),
  registryRegister: defineScript<number>({ name: 'registry-register', numberOfKeys: -1, lua: registryRegister }),
  registryHeartbeat: defineScript<number>({ name: 'registry-heartbeat', numberOfKeys: 2, lua: registryHeartbeat }),
  registryDrain: defineScript<number>({ name: 'registry-drain', numberOfKeys: 1, lua: registryDrain }),
  registryRemove: defineScript<number>({ name: 'registry-remove', numberOfKeys: -1, lua: registryRemove }),
  lockAcquire: defineScript<number>({ name: 'lock-acquire', numberOfKeys: 1, lua: lockAcquire }),
  lockRelease: defineScript<number>({ name: 'lock-release', numberOfKeys: 1, lua: lockRelease }),
  rateLimit: defineScript<[0 | 1, number]>({ name: 'rate-limit', numberOfKeys: 1, lua: rateLimit }),
  workflowSettle: defineScript<number>({ name: 'workflow-settle', numberOfKeys: 1, lua: workflowSettle }),
  workflowClaim: defineScript<string[]>({ name: 'workflow-claim', numberOfKeys: 1, lua: workflowClaim }),
  workflowCancel: defineScript<string>({ name: 'workflow-cancel', numberOfKeys: 1, lua: workflowCancel }),
} as const;
