/** Dead letters and cancellation through real processes: tasks die, are listed, replayed and cancelled. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json } from '../support/http.ts';
import { fastFleetEnv, startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-dlq');
const env = fastFleetEnv(prefix, { FLAKY_BREAKER_OPEN_MS: '300' });
let failing = false;
let downstream: Server;
let api: ApiProcess;

interface TaskBody { id: string; state: string; pool: string; attempts: { made: number; max: number }; errors: string[]; previousErrors?: string[]; result?: unknown; startedAt?: string; finishedAt?: string }
const post = (path: string, body?: unknown) =>
  fetch(`${api.url}${path}`, { method: 'POST', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
const enqueue = async (payload: object, extra: object = {}): Promise<TaskBody> => json(post('/v1/tasks', { type: 'flaky', payload, attempts: 2, backoff: { delayMs: 50 }, ...extra }));
const get = (id: string): Promise<TaskBody> => json(fetch(`${api.url}/v1/tasks/${id}`));
const until = (id: string, state: string, timeoutMs = 15_000) =>
  waitFor(async () => {
    const t = await get(id);
    return t.state === state ? t : undefined;
  }, { timeoutMs, what: `task ${id} to be ${state}` });

beforeAll(async () => {
  downstream = createServer((_req, res) => {
    res.statusCode = failing ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => downstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(downstream.address() as AddressInfo).port}/`;
  [api] = await Promise.all([startApiProcess(env), startAgentProcess('flaky', { ...env, FLAKY_DOWNSTREAM_URL: url })]);
  await waitFor(async () => ((await json(fetch(`${api.url}/v1/agents?health=HEALTHY`))) as unknown[]).length === 1, { what: 'a healthy agent' });
});
afterAll(() => new Promise<void>((r) => downstream.close(() => r())));

describe('dead letters', () => {
  it('lists dead tasks with their errors, filtered, and replays them with fresh attempts', async () => {
    failing = true;
    const a = await enqueue({});
    const b = await enqueue({});
    const deadA = await until(a.id, 'dead');
    await until(b.id, 'dead');
    expect(deadA.attempts).toEqual({ made: 2, max: 2, started: 2 });
    expect(deadA.errors).toHaveLength(2);
    expect(deadA.errors[0]).toMatch(/downstream .* answered 503/);

    const listed = await json(fetch(`${api.url}/v1/dlq?type=flaky&error=ANSWERED%20503`));
    expect(listed.tasks.map((t: TaskBody) => t.id).sort()).toEqual([a.id, b.id].sort());
    expect((await json(fetch(`${api.url}/v1/dlq?type=echo`))).tasks).toEqual([]);
    expect((await json(fetch(`${api.url}/v1/dlq?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`))).tasks).toEqual([]);
    expect((await fetch(`${api.url}/v1/dlq?limit=0`)).status).toBe(400);

    failing = false;
    await new Promise((r) => setTimeout(r, 600)); // let the breaker's open time pass
    const one = await post(`/v1/dlq/${a.id}/replay`);
    expect(one.status).toBe(202);
    const done = await until(a.id, 'completed');
    expect(done.attempts.made).toBe(1);
    expect(done.previousErrors).toHaveLength(2);
    expect(done.errors).toEqual([]);

    const bulk = await post('/v1/dlq/replay', { type: 'flaky' });
    expect(bulk.status).toBe(202);
    expect((await json(bulk)).replayed).toBe(1);
    await until(b.id, 'completed');
    expect((await post(`/v1/dlq/${b.id}/replay`)).status).toBe(409); // not dead any more
    expect((await post('/v1/dlq/flaky~nothing/replay')).status).toBe(404);
  });
});

describe('cancellation', () => {
  it('removes a task that has not started; GET then says cancelled', async () => {
    const parked = await enqueue({}, { pool: 'nobody-here' });
    expect(parked.state).toBe('parked');
    const res = await fetch(`${api.url}/v1/tasks/${parked.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect((await json(res)).state).toBe('cancelled');
    expect((await get(parked.id)).state).toBe('cancelled');
  });

  it('aborts a running task through its agent', async () => {
    const running = await enqueue({ latencyMs: 10_000 });
    await until(running.id, 'active');
    const res = await fetch(`${api.url}/v1/tasks/${running.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect((await json(res)).state).toBe('cancelled');
    const cancelled = await get(running.id);
    expect(cancelled.attempts.made).toBe(1);
    expect(Date.parse(cancelled.finishedAt ?? '')).toBeGreaterThan(Date.parse(cancelled.startedAt ?? ''));
  });

  it('a task cancelled while it ran is not a dead letter: not listed, not replayed, 409 on replay', async () => {
    const running = await enqueue({ latencyMs: 10_000 });
    await until(running.id, 'active');
    expect((await fetch(`${api.url}/v1/tasks/${running.id}`, { method: 'DELETE' })).status).toBe(200);
    const dead = await enqueue({ fatal: true, failRate: 1 }); // a real dead letter beside it
    await until(dead.id, 'dead');

    const listed = (await json(fetch(`${api.url}/v1/dlq?type=flaky`))).tasks.map((t: TaskBody) => t.id);
    expect(listed).toContain(dead.id);
    expect(listed).not.toContain(running.id);
    const one = await post(`/v1/dlq/${running.id}/replay`);
    expect(one.status).toBe(409);
    expect(one.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await json(one)).detail).toMatch(/was cancelled, not dead/);
    const bulk = await json(post('/v1/dlq/replay', { type: 'flaky' }));
    expect(bulk.tasks.map((t: TaskBody) => t.id)).toEqual([dead.id]);
    expect((await get(running.id)).state).toBe('cancelled');
  });

  it('answers 409 for a finished task and 404 for an unknown one', async () => {
    const done = await enqueue({});
    await until(done.id, 'completed');
    expect((await fetch(`${api.url}/v1/tasks/${done.id}`, { method: 'DELETE' })).status).toBe(409);
    expect((await fetch(`${api.url}/v1/tasks/flaky~nothing`, { method: 'DELETE' })).status).toBe(404);
  });
});
