/**
 * GET /v1/workflows stays small however big the runs are (issue 18, item 13): it lists overviews with
 * node counts by state and no nodes, and a run's nodes are read a page at a time, each exactly once.
 * Three runs of 5 000 nodes against a real API and Redis; no agents, so the runs hold still (each
 * root is routed and waits in its pool, everything else is pending).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { getWorkflow } from '../../src/api/routes/workflows.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { fixedRouter } from '../../src/routing/fixed.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import { WorkflowEngine } from '../../src/workflow/engine.ts';
import { WorkflowRuns } from '../../src/workflow/runs.ts';
import type { NodeView, RunOverview, RunView } from '../../src/workflow/view.ts';
import { json } from '../support/http.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { step } from '../support/workflow-types.ts';

const NODES = 5000;
const ROOTS = 10;
const { prefix } = useRedisPrefix('workflow-list');
const config = testConfig(prefix, { port: 0, maxWorkflowNodes: NODES, maxBodyBytes: 4 * 1024 * 1024 });
const catalogue = new Catalogue([step]);
// The route functions on their own parts (the app passes them its query): a store reader, its engine never started.
const redis = createRedis(REDIS_URL, 'client');
const queues = new PoolQueues(redis, prefix);
const producer = new TaskProducer({ redis, queues, catalogue, router: fixedRouter, config });
const engine = new WorkflowEngine({ redis, subscriber: redis, queues, producer, catalogue, prefix, keepRunsS: 60, log: silentLog });
const runs = new WorkflowRuns({ redis, prefix, catalogue, engine, maxNodes: NODES, idempotencyTtlS: 60, keepRunsS: 60 });
let api: ApiServer;
const ids: string[] = [];

/** ROOTS chains of NODES / ROOTS nodes each; node ids `n<i>` in request order, payloads of some size as real ones have. */
const bigRun = (name: string) => ({
  name,
  nodes: Array.from({ length: NODES }, (_, i) => ({ id: `n${i}`, type: 'step', payload: { ms: 0, amount: i }, ...(i >= ROOTS ? { dependsOn: [`n${i - ROOTS}`] } : {}) })),
});

beforeAll(async () => {
  api = await startApi({ config, catalogue, redisUrl: REDIS_URL, log: silentLog });
  for (const name of ['big-a', 'big-b', 'big-c']) {
    const res = await fetch(`${api.url}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bigRun(name)) });
    const body = (await json(res)) as { id: string };
    expect(res.status, JSON.stringify(body)).toBe(202);
    ids.push(body.id);
  }
}, 60_000);

afterAll(async () => {
  await api?.close();
  await Promise.all([runs.close(), engine.stop(), queues.close()]);
  redis.disconnect();
});

async function list(query = ''): Promise<{ bytes: number; runs: RunOverview[] }> {
  const res = await fetch(`${api.url}/v1/workflows${query}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return { bytes: Buffer.byteLength(text), runs: (JSON.parse(text) as { runs: RunOverview[] }).runs };
}

describe('GET /v1/workflows with big runs', () => {
  it('lists overviews with node counts and no nodes, in a few hundred bytes per run', async () => {
    // Once the engine has routed the roots, nothing moves: 10 queued, the rest pending.
    const settled = await waitFor(async () => {
      const l = await list();
      return l.runs.length === 3 && l.runs.every((r) => r.nodeCounts.queued === ROOTS) ? l : undefined;
    }, { what: 'the roots of the three runs queued', timeoutMs: 20_000 });
    expect(settled.runs.map((r) => r.id)).toEqual([...ids].reverse());
    for (const r of settled.runs) {
      expect(r).not.toHaveProperty('nodes');
      expect(r).toMatchObject({ state: 'running', progress: { total: NODES, done: 0, running: ROOTS }, compensationCounts: { done: 0, failed: 0 } });
      expect(r.nodeCounts).toEqual({ pending: NODES - ROOTS, ready: 0, queued: ROOTS, done: 0, dead: 0, skipped: 0, cancelled: 0 });
    }
    // 15 000 nodes, and the answer is still under 1 KiB per run (it was megabytes with the nodes).
    expect(settled.bytes).toBeLessThan(3 * 1024);
    expect((await list('?limit=100')).bytes).toBeLessThan(3 * 1024);
  });

  it('refuses a bad limit with a 400 naming the field', async () => {
    const res = await fetch(`${api.url}/v1/workflows?limit=0`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await json(res)) as { errors: Array<{ path: string }> }).errors.map((e) => e.path)).toEqual(['limit']);
  });

  it('answers GET /v1/workflows/:id with the first 1 000 nodes and where the next page starts', async () => {
    const res = await fetch(`${api.url}/v1/workflows/${ids[0]}`);
    const text = await res.text();
    expect(res.status).toBe(200);
    const view = JSON.parse(text) as RunView;
    expect(view.nodes.map((n) => n.id)).toEqual(Array.from({ length: 1000 }, (_, i) => `n${i}`));
    expect(view.nodePage).toEqual({ offset: 0, limit: 1000, next: 1000 });
    expect(view.nodeCounts.pending).toBe(NODES - ROOTS);
    expect(Buffer.byteLength(text)).toBeLessThan(1024 * 1024);
  });

  it('pages every node exactly once, in request order, with states that add up to the counts', async () => {
    for (const id of ids) {
      const seen: NodeView[] = [];
      let pages = 0;
      let overview: RunView | undefined;
      for (let offset: number | undefined = 0; offset !== undefined; pages++) {
        const reply = await getWorkflow(runs, id, { nodeOffset: String(offset), nodeLimit: '700' });
        const view = reply.body as RunView;
        expect(view.nodePage.offset).toBe(offset);
        seen.push(...view.nodes);
        offset = view.nodePage.next;
        overview ??= view;
      }
      expect(pages).toBe(Math.ceil(NODES / 700));
      expect(seen.map((n) => n.id)).toEqual(Array.from({ length: NODES }, (_, i) => `n${i}`));
      expect(new Set(seen.map((n) => n.id)).size).toBe(NODES);
      const byState: Record<string, number> = { pending: 0, ready: 0, queued: 0, done: 0, dead: 0, skipped: 0, cancelled: 0 };
      for (const n of seen) byState[n.state]! += 1;
      expect(byState).toEqual(overview!.nodeCounts);
      expect(seen[ROOTS]).toMatchObject({ id: `n${ROOTS}`, type: 'step', state: 'pending', dependsOn: ['n0'] });
    }
  });

  it('reads no nodes with nodeLimit=0, an empty page past the end, and refuses a page over the maximum naming the field', async () => {
    const none = (await getWorkflow(runs, ids[1]!, { nodeLimit: '0' })).body as RunView;
    expect(none.nodes).toEqual([]);
    expect(none.nodePage).toEqual({ offset: 0, limit: 0 });
    expect(none.progress.total).toBe(NODES);
    const past = (await getWorkflow(runs, ids[1]!, { nodeOffset: String(NODES), nodeLimit: '10' })).body as RunView;
    expect(past.nodes).toEqual([]);
    expect(past.nodePage).toEqual({ offset: NODES, limit: 10 });
    await expect(getWorkflow(runs, ids[1]!, { nodeLimit: '1001' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', issues: [{ path: 'nodeLimit' }] });
    await expect(getWorkflow(runs, ids[1]!, { nodeOffset: '-1' })).rejects.toMatchObject({ issues: [{ path: 'nodeOffset' }] });
    await expect(getWorkflow(runs, ids[1]!, { nodes: 'all' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('pages nodes over HTTP: ?nodeOffset=&nodeLimit= are applied, and a bad one is a 400 naming it', async () => {
    const res = await fetch(`${api.url}/v1/workflows/${ids[2]}?nodeOffset=2000&nodeLimit=300`);
    const page = (await json(res)) as RunView;
    expect(res.status).toBe(200);
    expect(page.nodes.map((n) => n.id)).toEqual(Array.from({ length: 300 }, (_, i) => `n${2000 + i}`));
    expect(page.nodePage).toEqual({ offset: 2000, limit: 300, next: 2300 });
    for (const bad of ['nodeLimit=0x10', 'nodeLimit=1001', 'nodeOffset=1e2']) {
      const r = await fetch(`${api.url}/v1/workflows/${ids[2]}?${bad}`);
      const problem = (await json(r)) as { errors: Array<{ path: string }> };
      expect(r.status, bad).toBe(400);
      expect(problem.errors[0]!.path).toBe(bad.split('=')[0]);
    }
    expect((await fetch(`${api.url}/v1/workflows?limit=0x10`)).status).toBe(400);
  });

  it('reads a run written before the counts and the order list from its node states and definitions', async () => {
    const { run } = await runs.start({ nodes: [{ id: 'x', type: 'step', payload: {} }, { id: 'y', type: 'step', payload: {}, dependsOn: ['x'] }, { id: 'z', type: 'step', payload: {} }] });
    await redis.hdel(engine.store.key(run.id), 'pending', 'ready', 'dead', 'skipped', 'cancelled');
    await redis.del(engine.store.key(run.id, ':order'));
    const view = (await getWorkflow(runs, run.id, { nodeOffset: '1', nodeLimit: '5' })).body as RunView;
    expect(view.nodes.map((n) => n.id)).toEqual(['y', 'z']);
    const states = Object.values(await redis.hgetall(engine.store.key(run.id, ':state')));
    expect(Object.values(view.nodeCounts).reduce((a, b) => a + b, 0)).toBe(3);
    expect(view.nodeCounts.pending).toBe(states.filter((st) => st === 'pending').length);
    expect(view.nodeCounts.pending).toBe(1);
  });
});
