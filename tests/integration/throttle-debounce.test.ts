/**
 * Throttle and debounce on a key, through the HTTP API against real Redis and BullMQ, with tasks
 * routed over two pools (so requests of one key land in different pools and must still meet).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { ledger, step, stepWorker } from '../support/workflow-types.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { json } from '../support/http.ts';

const { prefix, redis } = useRedisPrefix('throttle-debounce');

let api: ApiServer;
const agents: Agent[] = [];

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0 });
  for (const pool of ['default', 'second']) agents.push(await Agent.start({ definition: stepWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10, pool }));
  api = await startApi({ config, catalogue: new Catalogue([step]), redisUrl: REDIS_URL, log: silentLog });
  // Both pools are routable before the first request (the API's fleet snapshot has them).
  await waitFor(async () => (await json(fetch(`${api.url}/v1/pools?type=step`))).filter((p: { eligible: boolean }) => p.eligible).length === 2, { what: 'two eligible pools' });
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api.close();
});

const post = (body: unknown) => fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('throttle', () => {
  it('enqueues the first request of a window; the others get its task back', async () => {
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await post({ type: 'step', payload: { amount: i }, throttle: { key: 'tenant-1', windowMs: 2000 } }));
    expect(answers.map((r) => r.status)).toEqual([202, 200, 200, 200, 200]);
    const bodies = await Promise.all(answers.map((r) => json(r)));
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    expect(bodies.slice(1).every((b) => b.throttled === true)).toBe(true);
    // Another key has its own window.
    expect((await post({ type: 'step', payload: {}, throttle: { key: 'tenant-2', windowMs: 2000 } })).status).toBe(202);
    // After the window, the key enqueues again.
    await new Promise((r) => setTimeout(r, 2100));
    const later = await post({ type: 'step', payload: {}, throttle: { key: 'tenant-1', windowMs: 2000 } });
    expect(later.status).toBe(202);
    expect((await json(later)).id).not.toBe(bodies[0].id);
  });
});

describe('debounce', () => {
  it('runs one task, once, with the last request of a burst, the window counted from the last request', async () => {
    const ids = new Set<string>();
    const first = Date.now();
    for (let i = 1; i <= 6; i++) {
      const res = await post({ type: 'step', payload: { amount: i }, debounce: { key: 'doc-9', windowMs: 800 } });
      expect(res.status).toBe(i === 1 ? 202 : 200);
      const body = await json(res);
      if (i > 1) expect(body.debounced).toBe(true);
      ids.add(body.id);
      await new Promise((r) => setTimeout(r, 200)); // a burst: each request inside the last one's window
    }
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    const task = await waitFor(async () => {
      const v = await json(fetch(`${api.url}/v1/tasks/${id}`));
      return v.state === 'completed' ? v : undefined;
    }, { timeoutMs: 15_000, what: 'the debounced task to complete' });
    expect(task.payload).toEqual({ ms: 0, fail: 'no', amount: 6 });
    expect(Date.parse(task.startedAt) - first).toBeGreaterThanOrEqual(5 * 200 + 800 - 50);
    expect(ledger.filter((e) => e.node === id)).toHaveLength(1);
  });

  it('starts a new task for a request that comes after the last one started', async () => {
    const a = await json(post({ type: 'step', payload: { amount: 1 }, debounce: { key: 'doc-10', windowMs: 300 } }));
    await waitFor(async () => (await json(fetch(`${api.url}/v1/tasks/${a.id}`))).state === 'completed', { what: 'the first task to run' });
    const b = await post({ type: 'step', payload: { amount: 2 }, debounce: { key: 'doc-10', windowMs: 300 } });
    expect(b.status).toBe(202);
    expect((await json(b)).id).not.toBe(a.id);
  });
});

describe('bad input', () => {
  it('refuses conflicting options and long keys with a 400 naming the field, and writes nothing', async () => {
    const before = (await keysMatching(redis, `${prefix}:*`)).sort();
    const cases: Array<[unknown, string]> = [
      [{ type: 'step', payload: {}, throttle: { key: 'k', windowMs: 1000 }, debounce: { key: 'k', windowMs: 1000 } }, 'debounce'],
      [{ type: 'step', payload: {}, debounce: { key: 'k', windowMs: 1000 }, delayMs: 10 }, 'delayMs'],
      [{ type: 'step', payload: {}, throttle: { key: 'k', windowMs: 1000 }, idempotencyKey: 'x' }, 'idempotencyKey'],
      [{ type: 'step', payload: {}, throttle: { key: 'é'.repeat(129), windowMs: 1000 } }, 'throttle.key'],
      [{ type: 'step', payload: {}, throttle: { key: 'k', windowMs: 0 } }, 'throttle.windowMs'],
      [{ type: 'step', payload: {}, debounce: { key: '', windowMs: 100 } }, 'debounce.key'],
    ];
    for (const [body, path] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect((await json(res)).errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect((await keysMatching(redis, `${prefix}:*`)).sort()).toEqual(before);
  });
});
