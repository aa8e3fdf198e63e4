/**
 * The map node over HTTP: one task per item of a dependency's result array, at most `concurrency` at
 * once (counted in the handlers), results in item order for the dependents; a failed item fails the
 * map (or is tolerated, null in its place); a map over something that is not an array, or over items
 * that are not payloads, fails its node with the reason; a cancelled run starts no more items; bad
 * definitions are 400s naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { FatalError } from '../../src/model/errors.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { json } from '../support/http.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const list = defineAgentType({
  name: 'list',
  version: '1.0.0',
  payload: z.object({ n: z.number().int().min(0), shape: z.enum(['numbers', 'objects', 'text']).default('objects'), ms: z.number().int().min(0).default(0), failAt: z.number().int().optional() }),
  result: z.unknown(),
  defaults: { attempts: 1 },
});
const square = defineAgentType({
  name: 'square',
  version: '1.0.0',
  payload: z.object({ x: z.number(), ms: z.number().int().min(0).default(0), fail: z.boolean().default(false) }),
  result: z.object({ y: z.number(), item: z.number().optional() }),
  defaults: { attempts: 2, backoff: { type: 'fixed', delayMs: 10, jitter: 0 } },
});

let running = 0;
let most = 0;
const seen: Array<{ run: string; x: number }> = [];
const listWorker = defineWorker(list, async (p) => {
  if (p.shape === 'text') return { items: 'not a list' };
  if (p.shape === 'numbers') return { items: Array.from({ length: p.n }, (_, i) => i) };
  return { items: Array.from({ length: p.n }, (_, i) => ({ order: { x: i, ms: p.ms, fail: i === p.failAt } })) };
});
const squareWorker = defineWorker(square, async (p, ctx) => {
  running++;
  most = Math.max(most, running);
  seen.push({ run: ctx.workflow?.runId ?? '', x: p.x });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, p.ms);
      ctx.signal.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted'))), { once: true });
    });
    if (p.fail) throw new FatalError(`x=${p.x} is refused`);
    return { y: p.x * p.x, ...(ctx.workflow?.item !== undefined ? { item: ctx.workflow.item } : {}) };
  } finally {
    running--;
  }
});

const { prefix } = useRedisPrefix('map-node');
let api: ApiServer;
const agents: Agent[] = [];

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0 });
  api = await startApi({ config, catalogue: new Catalogue([list, square]), redisUrl: REDIS_URL, log: silentLog });
  agents.push(await Agent.start({ definition: listWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 5 }));
  agents.push(await Agent.start({ definition: squareWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 20 }));
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api.close();
});

const post = (path: string, body: unknown) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const view = (id: string) => json(fetch(`${api.url}/v1/workflows/${id}`));
const node = async (id: string, nodeId: string) => (await view(id)).nodes.find((n: { id: string }) => n.id === nodeId);
const ended = (id: string, timeoutMs = 20_000) =>
  waitFor(async () => {
    const v = await view(id);
    return ['completed', 'compensated', 'failed', 'cancelled', 'compensation_failed'].includes(v.state) ? v : undefined;
  }, { timeoutMs, what: `run ${id} to end` });
const start = async (map: Record<string, unknown>, n = 25, shape = 'objects', listing: Record<string, unknown> = {}) => {
  const res = await post('/v1/workflows', {
    nodes: [
      { id: 'fetch', type: 'list', payload: { n, shape, ...listing } },
      { id: 'each', kind: 'map', over: 'fetch.items', type: 'square', payloadFrom: 'item.order', concurrency: 3, ...map, dependsOn: ['fetch'] },
      { id: 'sum', type: 'list', payload: { n: 0 }, dependsOn: ['each'] },
    ],
  });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
};

describe('a map node', () => {
  it('runs one task per item, at most `concurrency` at once, and passes the results on in item order', async () => {
    most = 0;
    const id = await start({}, 25, 'objects', { ms: 20 });
    const run = await ended(id);
    expect(run.state).toBe('completed');
    const each = run.nodes.find((n: { id: string }) => n.id === 'each');
    expect(each).toMatchObject({ kind: 'map', state: 'done', type: 'square', concurrency: 3, items: { total: 25, done: 25, failed: 0, running: 0 } });
    expect(each.result).toEqual(Array.from({ length: 25 }, (_, i) => ({ y: i * i, item: i })));
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThanOrEqual(2);
    expect(seen.filter((s) => s.run === id)).toHaveLength(25);
  });

  it('shows its items while it runs, and each item is a task to look up', async () => {
    const id = await start({ concurrency: 2 }, 6, 'objects', { ms: 150 });
    await waitFor(async () => (await node(id, 'each'))?.items?.done >= 1, { what: 'an item done' });
    const each = await node(id, 'each');
    expect(each.state).toBe('queued');
    expect(each.items.total).toBe(6);
    const task = await json(fetch(`${api.url}/v1/tasks/${id}.each.0`));
    expect(task).toMatchObject({ id: `${id}.each.0`, type: 'square', state: 'completed' });
    expect((await ended(id)).state).toBe('completed');
  });

  it('fails when an item fails after its attempts, and starts no more items', async () => {
    const res = await post('/v1/workflows', {
      nodes: [
        { id: 'fetch', type: 'list', payload: { n: 30, shape: 'numbers' } },
        { id: 'each', kind: 'map', over: 'fetch.items', type: 'square', concurrency: 2, dependsOn: ['fetch'] },
      ],
    });
    expect(res.status).toBe(202);
    // numbers are not square payloads: the map fails with the item and the field named, and runs none
    const id = (await json(res)).id;
    const run = await ended(id);
    expect(run.state).toBe('failed');
    expect(run.nodes.find((n: { id: string }) => n.id === 'each')).toMatchObject({ state: 'dead' });
    expect(run.reason).toMatch(/node each failed: map over fetch\.items: item 0: /);
    expect(seen.filter((s) => s.run === id)).toHaveLength(0);
  });

  it('fails on a failed item once its running items settled, and starts no more', async () => {
    const id = await start({ concurrency: 4, attempts: 1 }, 30, 'objects', { ms: 50, failAt: 5 });
    const run = await ended(id);
    expect(run.state).toBe('failed');
    expect(run.reason).toBe('node each failed: item 5 failed: x=5 is refused');
    expect(running).toBe(0);
    const ran = seen.filter((s) => s.run === id).length;
    // Items 0-4, item 5, the 3 running beside it, and one more for each of those that ended before item 5
    // failed (all take 50 ms): at most 12 of the 30, and none after the map failed.
    expect(ran).toBeLessThanOrEqual(5 + 1 + 3 + 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.filter((s) => s.run === id).length).toBe(ran);
    expect(run.nodes.find((n: { id: string }) => n.id === 'sum').state).toBe('skipped');
  });

  it('goes on past tolerated failures, null in the failed items\' places', async () => {
    const id = await start({ concurrency: 4, attempts: 1, tolerateFailures: 1 }, 8, 'objects', { failAt: 2 });
    const run = await ended(id);
    expect(run.state).toBe('completed');
    const each = run.nodes.find((n: { id: string }) => n.id === 'each');
    expect(each.items).toEqual({ total: 8, done: 7, failed: 1, running: 0 });
    expect(each.result.map((r: { y: number } | null) => r?.y ?? null)).toEqual([0, 1, null, 9, 16, 25, 36, 49]);
  });

  it('over an empty array is done at once with []', async () => {
    const id = await start({}, 0);
    const run = await ended(id);
    expect(run.state).toBe('completed');
    expect(run.nodes.find((n: { id: string }) => n.id === 'each')).toMatchObject({ state: 'done', result: [] });
  });

  it('fails its node with a clear reason when what it goes over is not an array', async () => {
    const id = await start({}, 3, 'text');
    const run = await ended(id);
    expect(run.state).toBe('failed');
    expect(run.reason).toBe('node each failed: map over fetch.items: expected an array, found a string');
  });

  it('is taken back when its run is cancelled: items not started are removed, no more start', async () => {
    const id = await start({ concurrency: 2 }, 40, 'objects', { ms: 100 });
    await waitFor(async () => (await node(id, 'each'))?.items?.done >= 2, { what: 'items running' });
    const res = await fetch(`${api.url}/v1/workflows/${id}`, { method: 'DELETE' });
    expect(res.status).toBeLessThan(300);
    const run = await ended(id);
    expect(run.state).toBe('cancelled');
    const ran = seen.filter((s) => s.run === id).length;
    expect(ran).toBeLessThan(40);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen.filter((s) => s.run === id).length).toBe(ran);
  });

  it('refuses bad definitions, naming the field', async () => {
    const res = await post('/v1/workflows', {
      nodes: [
        { id: 'fetch', type: 'list', payload: { n: 1 } },
        { id: 'a', kind: 'map', over: 'other.items', type: 'square', dependsOn: ['fetch'] },
        { id: 'b', kind: 'map', over: 'fetch.items', type: 'nope', dependsOn: ['fetch'] },
        { id: 'c', kind: 'map', over: 'fetch.items', type: 'square', concurrency: 0, dependsOn: ['fetch'] },
        { id: 'd', kind: 'map', over: 'fetch.items', type: 'square', compensate: {}, dependsOn: ['fetch'] },
        { id: 'e', kind: 'map', over: 'fetch.items', type: 'square', payloadFrom: 'order', dependsOn: ['fetch'] },
      ],
    });
    expect(res.status).toBe(400);
    const paths = (await json(res)).errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['nodes[1].over', 'nodes[2].type', 'nodes[3].concurrency', 'nodes[5].payloadFrom']));
    expect(paths.some((p: string) => p.startsWith('nodes[4]'))).toBe(true);
  });
});
