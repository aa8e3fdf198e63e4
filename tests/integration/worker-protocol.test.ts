/**
 * The worker protocol over HTTP against a real API and Redis: a worker registers, heartbeats, leases
 * (long poll), extends and reports; the guarantees of a Node agent hold (the result checked and
 * committed once, a stale lease refused with nothing written, retries and dead letters, expiry
 * re-queues, cancel on the next extend, drain, scopes). The Python worker in examples/ runs beside
 * Node agents and is killed in tests/e2e/python-worker.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { hashKey } from '../../src/model/api-key.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import demoTypes from '../../queues/index.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('worker-protocol');
const file = join(mkdtempSync(join(tmpdir(), 'switchyard-wp-')), 'keys.json');
writeFileSync(file, JSON.stringify({ keys: [
  { id: 'echo-worker', hash: hashKey('wk-echo'), scopes: ['agent'], types: ['echo'] },
  { id: 'producer', hash: hashKey('pk-1'), scopes: ['produce', 'read'] },
] }));
const ROOT = 'root-key';
let api: ApiServer;

beforeAll(async () => {
  api = await startApi({
    config: testConfig(prefix, { port: 0, apiKeys: [ROOT], apiKeysFile: file, lockMs: 1500, stalledIntervalMs: 500, heartbeatMs: 500, agentTtlMs: 5000 }),
    catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog,
  });
});
afterAll(async () => {
  await api?.close();
});

interface Answer<T = Record<string, unknown>> { status: number; body: T }
async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, key = ROOT): Promise<Answer<T>> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

interface Lease { task: string; lease: string; payload: Record<string, unknown>; attempt: number; maxAttempts: number; deadline: number; leaseMs: number; traceparent?: string; workflow?: { runId: string; nodeId: string } }
type Leases = { leases: Lease[]; paused?: string };

async function worker(pool: string, more: Record<string, unknown> = {}, key = ROOT): Promise<string> {
  const reg = await call<{ id: string }>('POST', '/v1/workers', { type: 'echo', pool, concurrency: 10, ...more }, key);
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  const beat = await call('POST', `/v1/workers/${reg.body.id}/heartbeat`, { health: 'HEALTHY' }, key);
  expect(beat.status).toBe(200);
  return reg.body.id;
}
const enqueue = async (pool: string, payload: Record<string, unknown> = { message: 'hi' }, more: Record<string, unknown> = {}) => {
  const r = await call<{ id: string }>('POST', '/v1/tasks', { type: 'echo', payload, pool, ...more });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return r.body.id;
};
const task = async (id: string) => (await call<{ state: string; result?: unknown; errors?: string[]; attempts: { made: number } }>('GET', `/v1/tasks/${id}`)).body;
/** One lease; the long poll answers as soon as the task is there (a task parked a moment before its pool is known comes within a second). */
const leaseOne = async (id: string, waitMs = 10_000): Promise<Lease> => {
  const got = await call<Leases>('POST', `/v1/workers/${id}/leases`, { max: 1, waitMs });
  expect(got.status, JSON.stringify(got.body)).toBe(200);
  expect(got.body.leases, JSON.stringify(got.body)).toHaveLength(1);
  return got.body.leases[0]!;
};
const report = (id: string, results: unknown[]) => call<{ results: Array<{ task: string; state: string; error?: string }> }>('POST', `/v1/workers/${id}/results`, { results });

describe('the worker protocol over HTTP', () => {
  it('registers UNKNOWN (no tasks), leases once HEALTHY, commits a checked result once and refuses the stale lease with 409', async () => {
    const reg = await call<{ id: string; leaseMs: number; heartbeatMs: number }>('POST', '/v1/workers', { type: 'echo', pool: 'wp-a', weight: 3, tags: ['py'] });
    expect(reg.status).toBe(201);
    expect(reg.body).toMatchObject({ type: 'echo', pool: 'wp-a', weight: 3, leaseMs: 1500, heartbeatMs: 500 });
    const id = reg.body.id;
    expect((await call<Array<{ id: string; health: string }>>('GET', '/v1/agents?pool=wp-a')).body).toEqual([expect.objectContaining({ id, health: 'UNKNOWN' })]);
    const early = await call<Leases>('POST', `/v1/workers/${id}/leases`, { max: 5 });
    expect(early.body).toEqual({ leases: [], paused: expect.stringMatching(/health is UNKNOWN/) });

    expect((await call('POST', `/v1/workers/${id}/heartbeat`, { health: 'HEALTHY', running: 0 })).body).toEqual({ draining: false, leases: [] });
    const t = await enqueue('wp-a', { message: 'one' });
    const l = await leaseOne(id);
    expect(l).toMatchObject({ task: t, type: 'echo', payload: { message: 'one' }, attempt: 1, maxAttempts: 3, idempotencyKey: t, timeoutMs: 10_000, leaseMs: 1500 });
    expect(l.deadline).toBeGreaterThan(Date.now());
    expect((await task(t)).state).toBe('active');

    const done = await report(id, [{ task: t, lease: l.lease, status: 'completed', result: { echoed: { message: 'one' } } }]);
    expect(done.body).toEqual({ results: [{ task: t, state: 'completed' }] });
    expect(await task(t)).toMatchObject({ state: 'completed', result: { echoed: { message: 'one' } } });

    const again = await report(id, [{ task: t, lease: l.lease, status: 'completed', result: { echoed: { message: 'changed' } } }]);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ title: 'Lease lost', detail: expect.stringMatching(/nothing was written/) });
    expect((await task(t)).result).toEqual({ echoed: { message: 'one' } });

    // Counted in the fleet's metrics like a Node agent's task (published by the lease desk every heartbeat).
    await waitFor(async () => /switchyard_tasks_completed_total\{type="echo",pool="wp-a"\} 1\b/.test(await (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${ROOT}` } })).text()), { what: 'the completion in /metrics' });
  });

  it('fails an attempt whose result breaks the result schema, retries a retryable failure, and kills a fatal one', async () => {
    const id = await worker('wp-b');
    const bad = await enqueue('wp-b');
    const l1 = await leaseOne(id);
    const r1 = await report(id, [{ task: bad, lease: l1.lease, status: 'completed', result: { wrong: true } }]);
    expect(r1.body.results[0]).toMatchObject({ state: 'dead', error: expect.stringMatching(/result of echo is invalid: result\.echoed/) });
    expect((await task(bad)).state).toBe('dead');

    const flaky = await enqueue('wp-b', { message: 'retry me' }, { backoff: { type: 'fixed', delayMs: 10 } });
    const a1 = await leaseOne(id);
    expect((await report(id, [{ task: flaky, lease: a1.lease, status: 'failed', error: 'downstream said no' }])).body.results[0]).toMatchObject({ state: 'retrying' });
    const a2 = await leaseOne(id);
    expect(a2).toMatchObject({ task: flaky, attempt: 2 });
    expect((await report(id, [{ task: flaky, lease: a2.lease, status: 'failed', error: 'bad request', retry: 'fatal' }])).body.results[0]).toMatchObject({ state: 'dead' });
    expect(await task(flaky)).toMatchObject({ state: 'dead', attempts: { made: 2 } });
  });

  it('reports many ends in one request, each with its own state', async () => {
    const id = await worker('wp-c');
    const ids = [await enqueue('wp-c'), await enqueue('wp-c'), await enqueue('wp-c')];
    // A pool the router has not heard of yet parks its first tasks for a moment: lease until all three came.
    const leased: Lease[] = [];
    await waitFor(async () => {
      leased.push(...(await call<Leases>('POST', `/v1/workers/${id}/leases`, { max: 10, waitMs: 500 })).body.leases);
      return leased.length === 3;
    }, { what: 'three leases' });
    const [a, b, c] = leased as [Lease, Lease, Lease];
    const r = await report(id, [
      { task: a.task, lease: a.lease, status: 'completed', result: { echoed: {} } },
      { task: b.task, lease: 'not-the-lease', status: 'completed', result: { echoed: {} } },
      { task: c.task, lease: c.lease, status: 'failed', error: 'nope', retry: 'fatal' },
    ]);
    expect(r.status).toBe(200);
    expect(r.body.results.map((x) => x.state)).toEqual(['completed', 'conflict', 'dead']);
    expect(new Set(leased.map((l) => l.task))).toEqual(new Set(ids));
    expect((await task(b.task)).state).toBe('active'); // its real lease still holds it
  });

  it('takes back a lease that was not extended: the task is leased again and the old lease refused', async () => {
    const id = await worker('wp-d');
    const t = await enqueue('wp-d');
    const first = await leaseOne(id);
    // Extending keeps it: past the lease length it is still ours.
    await new Promise((r) => setTimeout(r, 800));
    expect((await call('POST', `/v1/workers/${id}/leases/extend`, { leases: [{ task: t, lease: first.lease }] })).body).toEqual({ leases: [{ task: t, lease: first.lease, state: 'extended' }] });
    await new Promise((r) => setTimeout(r, 900));
    expect((await task(t)).state).toBe('active');
    // Then the worker stops extending it (it still heartbeats): the stalled check re-queues it, another lease gets it.
    expect((await call('POST', `/v1/workers/${id}/heartbeat`, { health: 'HEALTHY' })).status).toBe(200);
    const second = await leaseOne(id, 10_000);
    expect(second.task).toBe(t);
    expect(second.lease).not.toBe(first.lease);
    expect((await call('POST', `/v1/workers/${id}/leases/extend`, { leases: [{ task: t, lease: first.lease }] })).body).toEqual({ leases: [{ task: t, lease: first.lease, state: 'lost' }] });
    expect((await report(id, [{ task: t, lease: first.lease, status: 'completed', result: { echoed: {} } }])).status).toBe(409);
    expect((await report(id, [{ task: t, lease: second.lease, status: 'completed', result: { echoed: { second: true } } }])).body.results[0]!.state).toBe('completed');
    expect((await task(t)).result).toEqual({ echoed: { second: true } });
  }, 20_000);

  it('answers a long poll as soon as a task arrives, and tells a cancel on the next heartbeat', async () => {
    const id = await worker('wp-e');
    const started = Date.now();
    const polling = call<Leases>('POST', `/v1/workers/${id}/leases`, { max: 1, waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    const t = await enqueue('wp-e');
    const got = await polling;
    expect(got.body.leases.map((l) => l.task)).toEqual([t]);
    expect(Date.now() - started).toBeLessThan(3000);

    // The cancel route waits a while for the task to end; the worker heartbeats meanwhile (its leases with it).
    const cancelling = call('DELETE', `/v1/tasks/${t}`);
    const held = [{ task: t, lease: got.body.leases[0]!.lease }];
    let beat: Answer = { status: 0, body: {} };
    await waitFor(async () => {
      beat = await call('POST', `/v1/workers/${id}/heartbeat`, { health: 'HEALTHY', running: 1, leases: held });
      return (beat.body.leases as Array<{ state: string }>)[0]?.state !== 'extended';
    }, { what: 'the cancel to reach a heartbeat', intervalMs: 200 });
    expect(beat.body).toEqual({ draining: false, leases: [{ ...held[0], state: 'cancelled' }] });
    expect((await cancelling).body).toMatchObject({ state: 'cancelled' });
    expect((await task(t)).state).toBe('cancelled');
  });

  it('drains: the heartbeat says so and leases stop; UNHEALTHY leases nothing', async () => {
    const id = await worker('wp-f');
    expect((await call('POST', `/v1/agents/${id}/drain`)).status).toBe(202);
    expect((await call('POST', `/v1/workers/${id}/heartbeat`, { health: 'HEALTHY' })).body).toMatchObject({ draining: true });
    expect((await call<Leases>('POST', `/v1/workers/${id}/leases`, {})).body.paused).toMatch(/draining/);
    const sick = await worker('wp-f');
    await call('POST', `/v1/workers/${sick}/heartbeat`, { health: 'UNHEALTHY', reason: 'disk full' });
    expect((await call<Array<{ health: string; healthReason?: string }>>('GET', `/v1/agents?pool=wp-f&health=UNHEALTHY`)).body).toEqual([expect.objectContaining({ id: sick, healthReason: 'disk full' })]);
    expect((await call<Leases>('POST', `/v1/workers/${sick}/leases`, {})).body.paused).toMatch(/health is UNHEALTHY/);
    expect((await call('DELETE', `/v1/workers/${sick}`)).status).toBe(204);
    expect((await call('DELETE', `/v1/workers/${sick}`)).status).toBe(404);
  });

  it('runs a workflow node leased over HTTP and passes its result on', async () => {
    const id = await worker('wp-g');
    const run = await call<{ id: string }>('POST', '/v1/workflows', { nodes: [
      { id: 'a', type: 'echo', payload: { message: 'first' }, pool: 'wp-g' },
      { id: 'b', type: 'echo', payload: { message: 'second' }, pool: 'wp-g', dependsOn: ['a'] },
    ] });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    for (const node of ['a', 'b']) {
      const l = await leaseOne(id, 5000);
      expect(l.workflow).toMatchObject({ runId: run.body.id, nodeId: node });
      if (node === 'b') expect(l).toMatchObject({ deps: { a: { echoed: { message: 'first' } } } });
      expect((await report(id, [{ task: l.task, lease: l.lease, status: 'completed', result: { echoed: l.payload } }])).body.results[0]!.state).toBe('completed');
    }
    await waitFor(async () => (await call<{ state: string }>('GET', `/v1/workflows/${run.body.id}`)).body.state === 'completed', { what: 'the run to complete' });
  });

  it('is routed to like a Node agent: a HEALTHY worker\'s pool takes the type\'s unpinned tasks', async () => {
    const reg = await call<{ id: string }>('POST', '/v1/workers', { type: 'transform', pool: 'wp-route', concurrency: 5 });
    await call('POST', `/v1/workers/${reg.body.id}/heartbeat`, { health: 'HEALTHY' });
    await waitFor(async () => (await call<Array<{ pool: string; eligible: boolean }>>('GET', '/v1/pools?type=transform')).body.some((p) => p.pool === 'wp-route' && p.eligible), { what: 'the pool to be eligible' });
    // Routed to the worker's pool (or parked for the moment the router's snapshot takes to hear of it, then dispatched there).
    const t = await call<{ id: string; pool: string }>('POST', '/v1/tasks', { type: 'transform', payload: { text: 'abc' } });
    expect(['wp-route', '_parked']).toContain(t.body.pool);
    const l = (await call<Leases>('POST', `/v1/workers/${reg.body.id}/leases`, { waitMs: 5000 })).body.leases[0]!;
    expect(l.task).toBe(t.body.id);
    const next = await call<{ id: string; pool: string }>('POST', '/v1/tasks', { type: 'transform', payload: { text: 'def' } });
    expect(next.body.pool).toBe('wp-route');
  });

  it('acts on a timeout or a cancel only under the held lease: a bogus token settles nothing', async () => {
    const id = await worker('wp-i');
    const run = await call<{ id: string }>('POST', '/v1/workflows', { nodes: [
      { id: 'slow', type: 'echo', payload: {}, pool: 'wp-i', timeoutMs: 300, attempts: 1 },
      { id: 'after', type: 'echo', payload: {}, pool: 'wp-i', dependsOn: ['slow'] },
    ] });
    const l = await leaseOne(id, 5000);
    await new Promise((r) => setTimeout(r, 500)); // past its deadline
    const bogus = await call('POST', `/v1/workers/${id}/leases/extend`, { leases: [{ task: l.task, lease: 'bogus' }] });
    expect(bogus.body).toEqual({ leases: [{ task: l.task, lease: 'bogus', state: 'lost' }] });
    expect((await call<{ state: string }>('GET', `/v1/workflows/${run.body.id}`)).body.state).toBe('running');
    expect((await task(l.task)).state).toBe('active');
    const real = await call('POST', `/v1/workers/${id}/leases/extend`, { leases: [{ task: l.task, lease: l.lease }] });
    expect(real.body).toEqual({ leases: [{ task: l.task, lease: l.lease, state: 'timeout' }] });
    expect(await task(l.task)).toMatchObject({ state: 'dead', errors: [expect.stringMatching(/timed out|timeout/i)] });
    await waitFor(async () => (await call<{ state: string }>('GET', `/v1/workflows/${run.body.id}`)).body.state === 'failed', { what: 'the run to fail' });
  });

  it('writes nothing for a pool no worker registered in, and refuses metadata too large to store', async () => {
    const made = 'echo.never-registered.http-0123456789ab';
    const r = await call('POST', `/v1/workers/${made}/results`, { results: [{ task: 'x', lease: 'y', status: 'completed', result: { echoed: {} } }] });
    expect(r.status).toBe(409);
    expect((await call('POST', `/v1/workers/${made}/leases/extend`, { leases: [{ task: 'x', lease: 'y' }] })).body).toEqual({ leases: [{ task: 'x', lease: 'y', state: 'lost' }] });
    expect(await redis.keys(`${prefix}:*never-registered*`)).toEqual([]);
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 1000; i++) deep = { d: deep };
    const tooDeep = await call<{ errors: Array<{ path: string }> }>('POST', '/v1/workers', { type: 'echo', pool: 'wp-j', metadata: deep });
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.body.errors.map((e) => e.path)).toEqual(['metadata']);
    expect((await call('POST', '/v1/workers', { type: 'echo', pool: 'wp-j', metadata: { blob: 'x'.repeat(5000) } })).status).toBe(400);
    expect(await redis.sismember(`${prefix}:{catalogue}:queues`, '{echo.wp-j}')).toBe(0);
  });

  it('refuses bad input with a clear error, and keys without the agent scope or the type', async () => {
    const bad = await call<{ errors: Array<{ path: string }> }>('POST', '/v1/workers', { type: 'echo', concurrency: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e) => e.path)).toContain('concurrency');
    expect((await call('POST', '/v1/workers', { type: 'no-such-type' })).status).toBe(404);
    expect((await call('POST', '/v1/workers/not-a-worker/leases', {})).status).toBe(404);
    const id = await worker('wp-h');
    const badResult = await call<{ errors: Array<{ path: string }> }>('POST', `/v1/workers/${id}/results`, { results: [{ task: 'x', lease: 'y', status: 'maybe' }] });
    expect(badResult.status).toBe(400);

    const produce = await call<{ detail: string }>('POST', '/v1/workers', { type: 'echo' }, 'pk-1');
    expect(produce.status).toBe(403);
    expect(produce.body.detail).toMatch(/scope "agent"/);
    const otherType = await call<{ detail: string }>('POST', '/v1/workers', { type: 'transform' }, 'wk-echo');
    expect(otherType.status).toBe(403);
    expect(otherType.body.detail).toMatch(/"transform"/);
    const mine = await worker('wp-h', {}, 'wk-echo');
    expect((await call('POST', `/v1/workers/${mine}/leases`, {}, 'wk-echo')).status).toBe(200);
    const transformWorker = (await call<{ id: string }>('POST', '/v1/workers', { type: 'transform', pool: 'wp-h' })).body.id;
    expect((await call('POST', `/v1/workers/${transformWorker}/leases`, {}, 'wk-echo')).status).toBe(403);
  });
});
