/**
 * Conditions: a node with `when` runs only if the comparison holds on its dependency's result; else
 * it is skipped, nodes depending only on skipped nodes are skipped too, a node with one done
 * dependency still runs, and the run completes. The score comes from a signal, so each run can take
 * either branch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conditionHolds } from '../../src/model/condition.ts';
import { ValidationError } from '../../src/model/errors.ts';
import { waitFor } from '../support/wait.ts';
import { ledger } from '../support/workflow-types.ts';
import { useWorkflowSystem } from '../support/workflow-system.ts';

const { engine, runs } = useWorkflowSystem('condition');

const branching = {
  nodes: [
    { id: 'score', kind: 'signal', name: 'score' },
    { id: 'high', type: 'step', payload: {}, dependsOn: ['score'], when: { path: 'value', op: '>', value: 0.8 } },
    { id: 'low', type: 'step', payload: {}, dependsOn: ['score'], when: { path: 'value', op: '<=', value: 0.8 } },
    { id: 'after-high', type: 'step', payload: {}, dependsOn: ['high'] },
    { id: 'join', type: 'step', payload: {}, dependsOn: ['high', 'low'] },
  ],
};

async function runWith(score: number) {
  const { run } = await runs.start(branching);
  await waitFor(async () => (await runs.view(run.id)).nodes.find((n) => n.id === 'score')?.state === 'queued', { what: 'the run waiting for its score' });
  await runs.signal(run.id, 'score', { value: score });
  await waitFor(async () => (await engine.store.meta(run.id))?.state === 'completed', { timeoutMs: 10_000, what: `run ${run.id} completed` });
  const view = await runs.view(run.id);
  return { states: Object.fromEntries(view.nodes.map((n) => [n.id, n.state])), ran: ledger.filter((e) => e.run === run.id).map((e) => e.node).sort(), view };
}

describe('conditions', () => {
  it('takes the branch whose condition holds, skips the other and what depends only on it', async () => {
    const high = await runWith(0.9);
    expect(high.states).toEqual({ score: 'done', high: 'done', low: 'skipped', 'after-high': 'done', join: 'done' });
    expect(high.ran).toEqual(['after-high', 'high', 'join']);
    const low = await runWith(0.5);
    expect(low.states).toEqual({ score: 'done', high: 'skipped', low: 'done', 'after-high': 'skipped', join: 'done' });
    expect(low.ran).toEqual(['join', 'low']);
    // A skipped dependency is absent from ctx.deps' results: null.
    expect(ledger.find((e) => e.run === low.view.id && e.node === 'join')?.saw).toEqual({ high: null, low: { node: 'low', saw: ['score'] } });
    expect(low.view.nodeCounts).toMatchObject({ done: 3, skipped: 2 });
  });

  it('compares numbers and strings in order, anything by equality, and tests for a value', () => {
    expect(conditionHolds({ path: 'a.b', op: '>=', value: 2 }, { a: { b: 2 } })).toBe(true);
    expect(conditionHolds({ path: 'a.0', op: '<', value: 'm' }, { a: ['k'] })).toBe(true);
    expect(conditionHolds({ path: 'a', op: '>', value: 1 }, { a: '2' })).toBe(false);
    expect(conditionHolds({ path: 'a', op: '==', value: { x: [1] } }, { a: { x: [1] } })).toBe(true);
    expect(conditionHolds({ path: 'a', op: '!=', value: null }, {})).toBe(true);
    expect(conditionHolds({ path: 'missing', op: 'exists' }, { a: 1 })).toBe(false);
    expect(conditionHolds({ path: '', op: '==', value: 5 }, 5)).toBe(true);
  });

  it('names the dependency a condition must read, or refuses it (400 naming the field)', async () => {
    const refusal = async (nodes: unknown[]) => {
      try {
        await runs.start({ nodes });
      } catch (err) {
        if (err instanceof ValidationError) return err.issues.map((i) => `${i.path}: ${i.message}`);
        throw err;
      }
      throw new Error('expected a validation error');
    };
    const a = { id: 'a', type: 'step', payload: {} };
    const b = { id: 'b', type: 'step', payload: {} };
    expect(await refusal([{ ...a, when: { path: 'x', op: 'exists' } }])).toEqual(['nodes[0].when.node: a node without dependencies has no result to test']);
    expect(await refusal([a, b, { id: 'c', type: 'step', payload: {}, dependsOn: ['a', 'b'], when: { path: 'x', op: 'exists' } }])).toEqual(['nodes[2].when.node: name the dependency whose result it tests (one of a, b)']);
    expect(await refusal([a, b, { id: 'c', type: 'step', payload: {}, dependsOn: ['a'], when: { node: 'b', path: 'x', op: 'exists' } }])).toEqual(['nodes[2].when.node: "b" is not one of the node\'s dependencies (a)']);
    expect((await refusal([a, { id: 'c', type: 'step', payload: {}, dependsOn: ['a'], when: { path: 'x', op: '~' } }]))[0]).toMatch(/^nodes\[1\]\.when\.op: /);
  });
});
