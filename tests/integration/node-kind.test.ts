/**
 * The node-kind seam (src/workflow/node-kind.ts): a kind defined here, in one module's worth of code,
 * runs in real workflows next to task nodes, with no other change to the engine. The `hold` kind
 * starts by claiming its nodes and holding them until the test releases one (as a sleep's timer or a
 * signal would); it settles through the run store like any node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../../src/model/errors.ts';
import { validateWorkflow } from '../../src/model/workflow-definition.ts';
import { nodeIdSchema, type NodeSpec } from '../../src/model/workflow-node.ts';
import type { NodeKind } from '../../src/workflow/node-kind.ts';
import { NODE_KINDS } from '../../src/workflow/node-kinds.ts';
import { waitFor } from '../support/wait.ts';
import { ledger } from '../support/workflow-types.ts';
import { useWorkflowSystem } from '../support/workflow-system.ts';

/** `runId/node` -> the note the node was started with; a node leaves it when released or taken back. */
const held = new Map<string, string>();

const holdKind: NodeKind = {
  name: 'hold',
  schema: z.strictObject({ id: nodeIdSchema, kind: z.literal('hold'), dependsOn: z.array(nodeIdSchema).default([]), note: z.string().min(1) }),
  check: (parsed) => parsed as NodeSpec,
  async start(ctx, runId, _step, nodes) {
    const claimed = await ctx.store.claim(runId, 'node', new Map([...nodes.keys()].map((id) => [id, {}])));
    for (const id of claimed) held.set(`${runId}/${id}`, String(nodes.get(id)!.note));
    return { claimed };
  },
  async takeBack(_ctx, rec, id) {
    return held.delete(`${rec.meta.id}/${id}`);
  },
  async inspect(_ctx, rec, id) {
    return held.has(`${rec.meta.id}/${id}`) ? { state: 'running' } : { state: 'missing' };
  },
  async restart(_ctx, rec, id) {
    held.set(`${rec.meta.id}/${id}`, String(rec.nodes.get(id)!.note));
  },
  viewSchema: z.strictObject({ note: z.string() }),
  view: (def) => ({ note: String(def.note) }),
};

const { catalogue, engine, runs } = useWorkflowSystem('node-kind', [...NODE_KINDS, holdKind]);

const release = (runId: string, node: string, result: unknown) => {
  held.delete(`${runId}/${node}`);
  return engine.store.settle(runId, 'node', node, 'done', JSON.stringify(result), {});
};
const stateOf = async (id: string) => (await engine.store.meta(id))?.state;
const workflow = (note: string) => ({
  nodes: [
    { id: 'first', type: 'step', payload: {} },
    { id: 'wait', kind: 'hold', note, dependsOn: ['first'] },
    { id: 'last', type: 'step', payload: {}, dependsOn: ['wait'] },
  ],
});

describe('a node kind registered with the engine', () => {
  it('starts once its dependencies are done, holds its dependents until it settles, and passes its result on', async () => {
    const { run } = await runs.start(workflow('until released'));
    await waitFor(async () => held.has(`${run.id}/wait`), { what: 'the hold node started' });
    const view = await runs.view(run.id);
    expect(view.nodes.find((n) => n.id === 'wait')).toMatchObject({ kind: 'hold', state: 'queued', note: 'until released' });
    expect(view.nodes.find((n) => n.id === 'last')).toMatchObject({ type: 'step', state: 'pending' });
    expect(await release(run.id, 'wait', { released: true })).toBe(true);
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { what: 'run completed' });
    expect(ledger.find((e) => e.run === run.id && e.node === 'last')?.saw).toEqual({ wait: { released: true } });
    expect((await runs.view(run.id)).nodes.find((n) => n.id === 'wait')).toMatchObject({ state: 'done', result: { released: true } });
  });

  it('is taken back when its run is cancelled', async () => {
    const { run } = await runs.start(workflow('cancel me'));
    await waitFor(async () => held.has(`${run.id}/wait`), { what: 'the hold node started' });
    await runs.cancel(run.id);
    await waitFor(async () => (await stateOf(run.id)) === 'cancelled', { what: 'run cancelled' });
    expect(held.has(`${run.id}/wait`)).toBe(false);
    const nodes = (await runs.view(run.id)).nodes;
    expect(Object.fromEntries(nodes.map((n) => [n.id, n.state]))).toEqual({ first: 'done', wait: 'skipped', last: 'skipped' });
  });

  it('is started again by the sweep when its start was lost', async () => {
    const { run } = await runs.start(workflow('lost'));
    await waitFor(async () => held.has(`${run.id}/wait`), { what: 'the hold node started' });
    held.delete(`${run.id}/wait`); // as if the process holding it died
    const now = Date.now() + 10_000;
    await engine.sweep(now);
    expect(held.has(`${run.id}/wait`)).toBe(false); // missing once: a move may be under way
    await engine.sweep(now + 10_000);
    expect(held.get(`${run.id}/wait`)).toBe('lost');
    await release(run.id, 'wait', null);
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { what: 'run completed' });
  });

  it('is validated by its own schema, and an unknown kind is named with the known ones', async () => {
    const refusal = async (raw: unknown) => {
      try {
        await runs.start(raw);
      } catch (err) {
        if (err instanceof ValidationError) return err.issues.map((i) => `${i.path}: ${i.message}`);
        throw err;
      }
      throw new Error('expected a validation error');
    };
    expect(await refusal({ nodes: [{ id: 'w', kind: 'hold' }] })).toEqual(['nodes[0].note: nodes[0].note is required']);
    expect(await refusal({ nodes: [{ id: 'w', kind: 'hold', note: 'x', type: 'step' }] })).toEqual([expect.stringMatching(/^nodes\[0\]: Unrecognized key: "type"/)]);
    expect(await refusal({ nodes: [{ id: 'w', kind: 'nap' }] })).toEqual(['nodes[0].kind: unknown node kind "nap"; known: task, sleep, signal, map, hold']);
    expect(validateWorkflow({ nodes: [{ id: 'w', kind: 'hold', note: 'x' }] }, catalogue, 10, engine.kinds).nodes).toEqual([{ id: 'w', kind: 'hold', note: 'x', dependsOn: [] }]);
  });
});
