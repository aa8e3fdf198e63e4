/** The `step` agent type of the workflow tests: it sleeps, fails on request, and records every execution in a ledger. */
import { z } from 'zod';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { FatalError } from '../../src/model/errors.ts';

export const step = defineAgentType({
  name: 'step',
  version: '1.0.0',
  payload: z.object({ ms: z.number().int().min(0).default(0), fail: z.enum(['no', 'fatal', 'always']).default('no'), amount: z.number().optional() }),
  result: z.object({ node: z.string(), saw: z.array(z.string()) }),
  defaults: { attempts: 2, backoff: { type: 'fixed', delayMs: 20, jitter: 0 }, timeoutMs: 20_000 },
  breaker: { failureRatio: 1, minRequests: 1_000_000, windowMs: 1000, openMs: 1000, halfOpenProbes: 1 },
});

export interface Execution {
  run: string;
  node: string;
  undo: boolean;
  start: number;
  end: number;
  saw: Record<string, unknown>;
  outcome: 'ok' | 'failed' | 'aborted';
}
export const ledger: Execution[] = [];

export const stepWorker = defineWorker(step, async (p, ctx) => {
  const e: Execution = { run: ctx.workflow?.runId ?? '', node: ctx.workflow?.nodeId ?? ctx.taskId, undo: ctx.workflow?.compensating ?? false, start: Date.now(), end: 0, saw: { ...ctx.deps }, outcome: 'ok' };
  ledger.push(e);
  try {
    if (p.ms > 0) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, p.ms);
        ctx.signal.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted'))), { once: true });
      });
    }
    if (p.fail === 'fatal') throw new FatalError(`${e.node} failed for good`);
    if (p.fail === 'always') throw new Error(`${e.node} failed on attempt ${ctx.attempt}`);
  } catch (err) {
    e.outcome = ctx.signal.aborted ? 'aborted' : 'failed';
    throw err;
  } finally {
    e.end = Date.now();
  }
  return { node: e.node, saw: Object.keys(ctx.deps).sort() };
});

