/**
 * Idempotency keys over HTTP: the same key with the same request answers the first task or run
 * (200), the same key with a different request is refused with 422 problem+json naming the key,
 * and a refused batch writes nothing, not even reservations for its other keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { keys } from '../../src/redis/keys.ts';
import { canonicalJson, requestFingerprint } from '../../src/task/idempotency.ts';
import demoTypes from '../../queues/index.ts';
import { json } from '../support/http.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';

const { prefix, redis } = useRedisPrefix('idempotency');
let api: ApiServer;
beforeAll(async () => {
  api = await startApi({ config: testConfig(prefix, { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
});
afterAll(() => api?.close());

const post = (path: string, body: unknown) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const jobKeys = async () => (await keysMatching(redis, `${prefix}:{*}:*~*`)).length;

async function expectReused(res: Response, key: string, first: string): Promise<void> {
  expect(res.status).toBe(422);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = await json(res);
  expect(body).toMatchObject({ type: '/problems/idempotency-key-reused', status: 422 });
  expect(body.detail).toContain(`idempotencyKey ${JSON.stringify(key)}`);
  expect(body.detail).toContain(first);
}

describe('the request fingerprint', () => {
  it('ignores the order of object keys, not the order of arrays or any value', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
    expect(requestFingerprint({ type: 'echo', payload: { a: 1, b: 2 } })).toBe(requestFingerprint({ payload: { b: 2, a: 1 }, type: 'echo' }));
    expect(requestFingerprint({ type: 'echo', payload: { a: 1 } })).not.toBe(requestFingerprint({ type: 'echo', payload: { a: 2 } }));
    expect(requestFingerprint({ type: 'echo', payload: [1, 2] })).not.toBe(requestFingerprint({ type: 'echo', payload: [2, 1] }));
  });
});

describe('POST /v1/tasks with an idempotencyKey', () => {
  it('answers the first task for the same request (keys in any order), 422 naming the key for another', async () => {
    const first = await post('/v1/tasks', { type: 'echo', payload: { message: 'a', n: 1 }, idempotencyKey: 'order-1' });
    expect(first.status).toBe(202);
    const task = await json(first);
    const again = await post('/v1/tasks', { idempotencyKey: 'order-1', payload: { n: 1, message: 'a' }, type: 'echo' });
    expect(again.status).toBe(200);
    expect((await json(again)).id).toBe(task.id);

    const before = await jobKeys();
    await expectReused(await post('/v1/tasks', { type: 'echo', payload: { message: 'b', n: 1 }, idempotencyKey: 'order-1' }), 'order-1', task.id);
    await expectReused(await post('/v1/tasks', { type: 'echo', payload: { message: 'a', n: 1 }, priority: 3, idempotencyKey: 'order-1' }), 'order-1', task.id);
    expect(await jobKeys()).toBe(before);
    // The refused requests changed nothing: the first request still gets its task.
    expect((await json(post('/v1/tasks', { type: 'echo', payload: { message: 'a', n: 1 }, idempotencyKey: 'order-1' }))).id).toBe(task.id);
  });

  it('keys are per type: the same key for another type is another request', async () => {
    expect((await post('/v1/tasks', { type: 'echo', payload: {}, idempotencyKey: 'per-type' })).status).toBe(202);
    expect((await post('/v1/tasks', { type: 'transform', payload: { text: 'x' }, idempotencyKey: 'per-type' })).status).toBe(202);
  });
});

describe('POST /v1/tasks/batch with idempotencyKeys', () => {
  it('marks repeats of the same requests as duplicates, and refuses a batch reusing a key: nothing written, its other keys free', async () => {
    const first = await json(post('/v1/tasks/batch', { tasks: [{ type: 'echo', payload: { i: 1 }, idempotencyKey: 'b-1' }] }));
    const repeat = await json(post('/v1/tasks/batch', { tasks: [{ type: 'echo', payload: { i: 1 }, idempotencyKey: 'b-1' }, { type: 'echo', payload: { i: 2 }, idempotencyKey: 'b-2' }] }));
    expect(repeat.tasks[0]).toMatchObject({ id: first.tasks[0].id, duplicate: true });
    expect(repeat.tasks[1].duplicate).toBeUndefined();

    const before = await jobKeys();
    const res = await post('/v1/tasks/batch', { tasks: [{ type: 'echo', payload: { i: 3 }, idempotencyKey: 'b-3' }, { type: 'echo', payload: { i: 99 }, idempotencyKey: 'b-1' }] });
    await expectReused(res, 'b-1', first.tasks[0].id);
    expect((await json(post('/v1/tasks/batch', { tasks: [{ type: 'echo', payload: { i: 99 }, idempotencyKey: 'b-1' }] }))).tasks).toBeUndefined();
    expect(await jobKeys()).toBe(before);
    expect(await redis.exists(keys(prefix).idempotency('echo', 'b-3'))).toBe(0);
    // b-3 was given back, so another request may take it.
    expect((await post('/v1/tasks', { type: 'echo', payload: { other: true }, idempotencyKey: 'b-3' })).status).toBe(202);
  });
});

describe('POST /v1/workflows with an idempotencyKey', () => {
  const workflow = (text: string) => ({ name: 'wf', idempotencyKey: 'wf-1', nodes: [{ id: 'a', type: 'transform', payload: { text } }, { id: 'b', type: 'echo', payload: {}, dependsOn: ['a'] }] });

  it('answers the first run for the same request, 422 naming the key for another', async () => {
    const first = await post('/v1/workflows', workflow('x'));
    expect(first.status).toBe(202);
    const run = await json(first);
    const again = await post('/v1/workflows', workflow('x'));
    expect(again.status).toBe(200);
    expect(await json(again)).toMatchObject({ id: run.id, duplicate: true });
    await expectReused(await post('/v1/workflows', workflow('y')), 'wf-1', run.id);
  });
});
