/**
 * The signal node, over HTTP: a run waits for `POST /v1/workflows/:id/signals/:name`, whose payload
 * becomes the node's result, exactly once (ten concurrent senders: one 200, nine 409); a signal sent
 * before the node is reached is kept (202) and taken when it is; a timeout fails the node and the saga
 * compensates, or with `onTimeout: "continue"` goes on with null; a payload its schema refuses is a
 * 400 and keeps nothing; unknown runs and names are 404s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { json } from '../support/http.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { ledger, step, stepWorker } from '../support/workflow-types.ts';

const { prefix } = useRedisPrefix('signal-node');
let api: ApiServer;
let agent: Agent;

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0 });
  api = await startApi({ config, catalogue: new Catalogue([step]), redisUrl: REDIS_URL, log: silentLog });
  agent = await Agent.start({ definition: stepWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10 });
});

afterAll(async () => {
  await agent.close(0);
  await api.close();
});

const post = (path: string, body: unknown) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const start = async (signal: Record<string, unknown>, first: Record<string, unknown> = { payload: {} }) => {
  const res = await post('/v1/workflows', {
    nodes: [
      { id: 'first', type: 'step', ...first },
      { id: 'approval', kind: 'signal', name: 'approve', ...signal, dependsOn: ['first'] },
      { id: 'last', type: 'step', payload: {}, dependsOn: ['approval'] },
    ],
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
};
const view = (id: string) => json(fetch(`${api.url}/v1/workflows/${id}`));
const node = async (id: string, nodeId: string) => (await view(id)).nodes.find((n: { id: string }) => n.id === nodeId);
const ended = (id: string) => waitFor(async () => {
  const v = await view(id);
  return ['completed', 'compensated', 'failed', 'cancelled'].includes(v.state) ? v : undefined;
}, { timeoutMs: 15_000, what: `run ${id} to end` });
const signal = (id: string, body: unknown, name = 'approve') => post(`/v1/workflows/${id}/signals/${name}`, body);

describe('a signal node', () => {
  it('waits for its signal, whose payload is its result for its dependents; a second one is a 409', async () => {
    const id = await start({});
    await waitFor(async () => (await node(id, 'approval'))?.state === 'queued', { what: 'the run waiting for its signal' });
    expect(await node(id, 'approval')).toMatchObject({ kind: 'signal', name: 'approve' });
    const res = await signal(id, { by: 'ada', ok: true });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ run: id, node: 'approval', signal: 'approve', state: 'delivered' });
    expect((await ended(id)).state).toBe('completed');
    expect(ledger.find((e) => e.run === id && e.node === 'last')?.saw).toEqual({ approval: { by: 'ada', ok: true } });
    const again = await signal(id, { by: 'bob' });
    expect(again.status).toBe(409);
    expect((await json(again)).detail).toMatch(/already done/);
  });

  it('delivers exactly once to ten concurrent senders', async () => {
    const id = await start({});
    await waitFor(async () => (await node(id, 'approval'))?.state === 'queued', { what: 'the run waiting for its signal' });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => signal(id, { sender: i })));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, ...Array(9).fill(409)]);
    expect((await ended(id)).state).toBe('completed');
    expect(ledger.filter((e) => e.run === id && e.node === 'last')).toHaveLength(1);
  });

  it('keeps a signal sent before its node is reached, and the node takes it when it is', async () => {
    const id = await start({}, { payload: { ms: 800 } });
    const res = await signal(id, { early: true });
    expect(res.status).toBe(202);
    expect((await json(res)).state).toBe('kept');
    expect((await signal(id, { early: 'twice' })).status).toBe(409);
    expect((await ended(id)).state).toBe('completed');
    expect(await node(id, 'approval')).toMatchObject({ state: 'done', result: { early: true } });
  });

  it('fails on its timeout, and the saga compensates what completed', async () => {
    const id = await start({ timeoutMs: 600 }, { payload: {}, compensate: {} });
    const run = await ended(id);
    expect(run.state).toBe('compensated');
    expect(run.nodes.find((n: { id: string }) => n.id === 'approval')).toMatchObject({ state: 'dead', error: 'no signal "approve" within 600 ms' });
    expect((await signal(id, { late: true })).status).toBe(409);
  });

  it('goes on with a null result on its timeout when it says onTimeout: continue', async () => {
    const id = await start({ timeoutMs: 400, onTimeout: 'continue' });
    expect((await ended(id)).state).toBe('completed');
    expect(ledger.find((e) => e.run === id && e.node === 'last')?.saw).toEqual({ approval: null });
  });

  it('checks the payload against its schema (400, nothing kept), and names unknown runs and signals (404)', async () => {
    const schema = { type: 'object', properties: { amount: { type: 'number', maximum: 100 } }, required: ['amount'] };
    const id = await start({ schema });
    const bad = await signal(id, { amount: 500 });
    expect(bad.status).toBe(400);
    expect((await json(bad)).errors.map((e: { path: string }) => e.path)).toEqual(['payload.amount']);
    expect((await signal(id, { amount: 5 })).status).toBeLessThan(300);
    expect((await ended(id)).state).toBe('completed');
    expect((await signal('wf_nosuchrun', {})).status).toBe(404);
    const other = await signal(id, {}, 'reject');
    expect(other.status).toBe(404);
    expect((await json(other)).detail).toMatch(/no signal node named "reject"/);
  });

  it('takes only a JSON object or array, nested no deeper than a task payload, and keeps nothing it refused', async () => {
    const id = await start({}, { payload: { ms: 2000 } });
    for (const bare of ['"hello"', '5', 'true', 'null']) {
      const res = await fetch(`${api.url}/v1/workflows/${id}/signals/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bare });
      expect(res.status, bare).toBe(400);
    }
    let deep: unknown = {};
    for (let i = 0; i < 200; i++) deep = { k: deep };
    expect((await signal(id, deep)).status).toBe(400);
    expect((await signal(id, { ok: true })).status).toBe(202);
  });

  it('refuses two signal nodes of one name and a schema it cannot read, naming the field', async () => {
    const res = await post('/v1/workflows', {
      nodes: [
        { id: 'a', kind: 'signal', name: 'go' },
        { id: 'b', kind: 'signal', name: 'go' },
        { id: 'c', kind: 'signal', name: 'ok', schema: { type: 'no-such-type' } },
      ],
    });
    expect(res.status).toBe(400);
    expect((await json(res)).errors.map((e: { path: string }) => e.path)).toEqual(['nodes[1].name', 'nodes[2].schema']);
  });

  it('is taken back when its run is cancelled', async () => {
    const id = await start({ timeoutMs: 60_000 });
    await waitFor(async () => (await node(id, 'approval'))?.state === 'queued', { what: 'the run waiting for its signal' });
    expect((await fetch(`${api.url}/v1/workflows/${id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    expect((await ended(id)).state).toBe('cancelled');
    expect(await node(id, 'approval')).toMatchObject({ state: 'skipped' });
    expect((await signal(id, {})).status).toBe(409);
  });
});
