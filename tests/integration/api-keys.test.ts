/**
 * Scoped API keys: every route checks its scope (403 naming the scope a key lacks), a key limited to
 * some agent types cannot enqueue others (403 naming them, nothing written), Bull Board and the
 * dashboard need `read` and Bull Board's actions `admin`, keys live in the file as hashes, and a reload
 * rotates them without a restart (a bad file changes nothing). SIGHUP against a real API process:
 * tests/e2e/api-keys-reload.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { hashKey, type ApiKeyEntry } from '../../src/model/api-key.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import demoTypes from '../../queues/index.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';

const { prefix, redis } = useRedisPrefix('api-keys');
const file = join(mkdtempSync(join(tmpdir(), 'switchyard-keys-')), 'keys.json');
const entry = (id: string, key: string, scopes: ApiKeyEntry['scopes'], types?: string[]): ApiKeyEntry => ({ id, hash: hashKey(key), scopes, ...(types ? { types } : {}) });
const writeKeys = (keys: ApiKeyEntry[]) => writeFileSync(file, JSON.stringify({ keys }));
let api: ApiServer;

beforeAll(async () => {
  writeKeys([
    entry('echo-producer', 'pk-echo', ['produce', 'read'], ['echo']),
    entry('reader', 'rk-1', ['read']),
    entry('worker', 'ak-1', ['agent'], ['echo']),
    entry('ops', 'admin-1', ['admin']),
  ]);
  api = await startApi({ config: testConfig(prefix, { port: 0, apiKeys: ['env-root-key'], apiKeysFile: file }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
});
afterAll(async () => {
  await api?.close();
});

const call = (method: string, path: string, key: string, body?: unknown) =>
  fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), origin: api.url },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const detail = async (res: Response) => ((await res.json()) as { detail: string }).detail;
const jobKeys = async () => (await keysMatching(redis, `${prefix}:{*}:*~*`)).length;

describe('scoped API keys', () => {
  it('lets each route through only with its scope, and says which scope was missing', async () => {
    const denied = await call('POST', '/v1/tasks', 'rk-1', { type: 'echo', payload: {} });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await detail(denied)).toMatch(/POST \/v1\/tasks needs an API key with the scope "produce".*the key reader has "read"/);
    const made = await call('POST', '/v1/tasks', 'pk-echo', { type: 'echo', payload: { message: 'hi' } });
    expect(made.status).toBe(202);
    const { id } = (await made.json()) as { id: string };
    expect((await call('GET', `/v1/tasks/${id}`, 'rk-1')).status).toBe(200);
    expect((await call('GET', `/v1/tasks/${id}`, 'pk-echo')).status).toBe(200);
    const agentReads = await call('GET', `/v1/tasks/${id}`, 'ak-1');
    expect(agentReads.status).toBe(403);
    expect(await detail(agentReads)).toMatch(/scope "read"/);
    // Admin routes: a producer cannot replay dead letters or reset breakers; an admin key (file or env) can.
    expect(await detail(await call('POST', '/v1/dlq/replay', 'pk-echo', {}))).toMatch(/POST \/v1\/dlq\/replay needs an API key with the scope "admin"/);
    expect((await call('POST', '/v1/dlq/replay', 'admin-1', {})).status).toBe(202);
    expect((await call('POST', '/v1/breakers/echo/default/reset', 'env-root-key')).status).toBe(200);
    expect((await call('POST', '/v1/breakers/echo/default/reset', 'rk-1')).status).toBe(403);
    // Unknown keys are still 401, unknown routes still 404 (any valid key).
    expect((await call('GET', '/v1/pools', 'no-such-key')).status).toBe(401);
    expect((await call('GET', '/v1/no/such/route', 'ak-1')).status).toBe(404);
  });

  it('refuses agent types a key may not touch, naming them, and writes nothing', async () => {
    const before = await jobKeys();
    const one = await call('POST', '/v1/tasks', 'pk-echo', { type: 'flaky', payload: {} });
    expect(one.status).toBe(403);
    expect(await detail(one)).toMatch(/the key echo-producer may not touch the agent type "flaky"; it may touch "echo"/);
    const batch = await call('POST', '/v1/tasks/batch', 'pk-echo', { tasks: [{ type: 'echo', payload: {} }, { type: 'transform', payload: { text: 'x' } }] });
    expect(batch.status).toBe(403);
    expect(await detail(batch)).toMatch(/"transform"/);
    const saga = await call('POST', '/v1/workflows', 'pk-echo', { name: 'saga', nodes: [{ id: 'a', type: 'echo', payload: {}, compensate: { type: 'flaky', payload: {} } }] });
    expect(saga.status).toBe(403);
    expect(await detail(saga)).toMatch(/"flaky"/);
    const schedule = await call('POST', '/v1/schedules', 'pk-echo', { everyMs: 60_000, task: { type: 'flaky', payload: {} } });
    expect(schedule.status).toBe(403);
    expect(await jobKeys()).toBe(before);
    // Its own type goes through, in a batch and in a workflow.
    expect((await call('POST', '/v1/tasks/batch', 'pk-echo', { tasks: [{ type: 'echo', payload: {} }] })).status).toBe(202);
    expect((await call('POST', '/v1/workflows', 'pk-echo', { name: 'ok', nodes: [{ id: 'a', type: 'echo', payload: {} }] })).status).toBe(202);
  });

  it('serves Bull Board and the dashboard to `read`, and Bull Board\'s actions only to `admin`', async () => {
    expect((await call('GET', '/admin/queues', 'rk-1')).status).toBe(200);
    const listed = await call('GET', '/admin/queues/api/queues', 'rk-1');
    expect(listed.status).toBe(200);
    const queue = ((await listed.json()) as { queues: Array<{ name: string }> }).queues[0]!.name;
    expect((await call('GET', '/admin/queues', 'ak-1')).status).toBe(403);
    expect((await call('GET', '/metrics', 'ak-1')).status).toBe(403);
    const pause = await call('PUT', `/admin/queues/api/queues/${encodeURIComponent(queue)}/pause`, 'rk-1');
    expect(pause.status).toBe(403);
    expect(await detail(pause)).toMatch(/Bull Board's actions needs an API key with the scope "admin"/);
    expect((await call('PUT', `/admin/queues/api/queues/${encodeURIComponent(queue)}/pause`, 'admin-1')).status).toBe(200);
    expect((await call('PUT', `/admin/queues/api/queues/${encodeURIComponent(queue)}/resume`, 'admin-1')).status).toBe(200);
  });

  it('rotates keys on reload without a restart, and keeps the keys in use when the file is bad', async () => {
    writeKeys([entry('reader-2', 'rk-2', ['read']), entry('ops', 'admin-1', ['admin'])]);
    expect(api.reloadKeys()).toBe(3); // the two in the file and the one in SWITCHYARD_API_KEYS
    expect((await call('GET', '/v1/pools', 'rk-1')).status).toBe(401);
    expect((await call('GET', '/v1/pools', 'rk-2')).status).toBe(200);
    writeFileSync(file, JSON.stringify({ keys: [{ id: 'bad', hash: 'rk-3', scopes: ['read'] }] }));
    expect(() => api.reloadKeys()).toThrow(/keys\[0\]\.hash/);
    writeFileSync(file, '{ not json');
    expect(() => api.reloadKeys()).toThrow(/is not JSON/);
    expect((await call('GET', '/v1/pools', 'rk-2')).status).toBe(200);
  });
});
