/**
 * The sleep node: a run sleeps between task nodes holding no agent (its node is an entry in one
 * sorted set), wakes on time, passes `{ wokeAt }` to its dependents, is taken back when the run is
 * cancelled, and is put back by the sweep when its entry went missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/model/errors.ts';
import { keys } from '../../src/redis/keys.ts';
import { waitFor } from '../support/wait.ts';
import { ledger } from '../support/workflow-types.ts';
import { useWorkflowSystem } from '../support/workflow-system.ts';

const { prefix, redis, engine, runs } = useWorkflowSystem('sleep-node');
const sleeps = keys(prefix).workflow.timers;

const stateOf = async (id: string) => (await engine.store.meta(id))?.state;
const napping = (nap: Record<string, unknown>) => ({
  nodes: [
    { id: 'first', type: 'step', payload: {} },
    { id: 'nap', kind: 'sleep', ...nap, dependsOn: ['first'] },
    { id: 'last', type: 'step', payload: {}, dependsOn: ['nap'] },
  ],
});
const execution = (run: string, node: string) => ledger.find((e) => e.run === run && e.node === node);

describe('a sleep node', () => {
  it('holds its dependents for its duration, holding no agent, then passes on when it woke', async () => {
    const { run } = await runs.start(napping({ durationMs: 1200 }));
    const asleep = await waitFor(async () => (await runs.view(run.id)).nodes.find((n) => n.id === 'nap' && n.state === 'queued'), { what: 'the run asleep' });
    expect(asleep).toMatchObject({ kind: 'sleep', wakeAt: expect.any(String) });
    expect(await redis.zscore(sleeps, `${run.id}\tnap`)).toBe(String(Date.parse(asleep.wakeAt!)));
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { timeoutMs: 10_000, what: 'run completed' });
    const slept = execution(run.id, 'last')!.start - execution(run.id, 'first')!.end;
    expect(slept).toBeGreaterThanOrEqual(1200);
    expect(slept).toBeLessThan(1200 + 1500);
    const woke = (await runs.view(run.id)).nodes.find((n) => n.id === 'nap')!;
    expect(woke).toMatchObject({ state: 'done', result: { wokeAt: expect.any(String) }, startedAt: expect.any(String), finishedAt: expect.any(String) });
    expect(execution(run.id, 'last')!.saw).toEqual({ nap: woke.result });
    expect(await redis.zscore(sleeps, `${run.id}\tnap`)).toBeNull();
  });

  it('wakes at once when its `until` has passed', async () => {
    const { run } = await runs.start(napping({ until: new Date(Date.now() - 60_000).toISOString() }));
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { timeoutMs: 10_000, what: 'run completed' });
  });

  it('is taken back when its run is cancelled', async () => {
    const { run } = await runs.start(napping({ durationMs: 60_000 }));
    await waitFor(async () => (await redis.zscore(sleeps, `${run.id}\tnap`)) !== null, { what: 'the run asleep' });
    await runs.cancel(run.id);
    await waitFor(async () => (await stateOf(run.id)) === 'cancelled', { what: 'run cancelled' });
    expect(await redis.zscore(sleeps, `${run.id}\tnap`)).toBeNull();
    const nodes = (await runs.view(run.id)).nodes;
    expect(Object.fromEntries(nodes.map((n) => [n.id, n.state]))).toEqual({ first: 'done', nap: 'skipped', last: 'skipped' });
  });

  it('is put back to sleep by the sweep when its entry went missing, with its wake time', async () => {
    const { run } = await runs.start(napping({ durationMs: 1500 }));
    const member = `${run.id}\tnap`;
    const wakeAt = await waitFor(async () => (await redis.zscore(sleeps, member)) ?? undefined, { what: 'the run asleep' });
    await redis.zrem(sleeps, member); // as if its start had been cut off between the claim and the add
    const now = Date.now() + 10_000;
    await engine.sweep(now);
    await engine.sweep(now + 10_000);
    expect(await redis.zscore(sleeps, member)).toBe(wakeAt);
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { timeoutMs: 10_000, what: 'run completed' });
  });

  it('is left alone by the sweep until it is about to wake (a sleeping run costs nothing meanwhile)', async () => {
    const { run } = await runs.start(napping({ durationMs: 120_000 }));
    const wakeAt = Number(await waitFor(async () => (await redis.zscore(sleeps, `${run.id}\tnap`)) ?? undefined, { what: 'the run asleep' }));
    await engine.sweep(Date.now() + 6000);
    const next = Number(await redis.zscore(keys(prefix).workflow.active, run.id));
    // The sweep looks at a run once its score is 5 s old: this one, 5 s before it wakes.
    expect(next).toBe(wakeAt - 5000);
    await runs.cancel(run.id);
  });

  it("keeps its run job waiting when the job's hold runs out first, and finishes it with the run", async () => {
    const { run } = await runs.start(napping({ durationMs: 2500 }));
    const job = (await engine.runQueue.getJob(run.id))!;
    expect(await job.getState()).toBe('delayed');
    await job.promote(); // as if the hold had run out while the run still sleeps
    await waitFor(async () => (await job.getState()) === 'delayed' && (await stateOf(run.id)) === 'running', { what: 'the run job delayed again' });
    await waitFor(async () => (await engine.runQueue.getJobState(run.id)) === 'completed', { timeoutMs: 10_000, what: 'the run job completed with the run' });
    expect(await stateOf(run.id)).toBe('completed');
  });

  it('takes durationMs or until, one of them, up to a year', async () => {
    const refusal = async (nap: Record<string, unknown>) => {
      try {
        await runs.start(napping(nap));
      } catch (err) {
        if (err instanceof ValidationError) return err.issues.map((i) => `${i.path}: ${i.message}`);
        throw err;
      }
      throw new Error('expected a validation error');
    };
    expect(await refusal({})).toEqual(['nodes[1].durationMs: give durationMs or until, one of them']);
    expect(await refusal({ durationMs: 5, until: new Date().toISOString() })).toEqual(['nodes[1].durationMs: give durationMs or until, one of them']);
    expect(await refusal({ until: '2099-01-01T00:00:00Z' })).toEqual(['nodes[1].until: at most a year from now']);
    expect((await refusal({ durationMs: -1 }))[0]).toMatch(/^nodes\[1\]\.durationMs: /);
    expect((await refusal({ until: 'tomorrow' }))[0]).toMatch(/^nodes\[1\]\.until: /);
  });
});
