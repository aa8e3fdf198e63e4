import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import demoTypes from '../../queues/index.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { json } from '../support/http.ts';
import { silentLog, testConfig } from '../support/system.ts';

const { prefix, redis } = useRedisPrefix('api');
let api: ApiServer;
let keyed: ApiServer;

beforeAll(async () => {
  const catalogue = new Catalogue(demoTypes);
  api = await startApi({ config: testConfig(prefix, { port: 0 }), catalogue, redisUrl: REDIS_URL, log: silentLog });
  keyed = await startApi({ config: testConfig(prefix, { port: 0, apiKeys: ['k1', 'k2'] }), catalogue, redisUrl: REDIS_URL, log: silentLog });
});
afterAll(async () => {
  await api?.close();
  await keyed?.close();
});

const post = (path: string, body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers, ...(body === undefined ? {} : { body }) });

/** Every job key under this file's prefix: "nothing enqueued" means this does not grow. */
const jobKeys = async () => (await keysMatching(redis, `${prefix}:{*}:*~*`)).length;

describe('POST /v1/tasks', () => {
  it('accepts a task: 202 with id, pool, state and routing, and a Location', async () => {
    const res = await post('/v1/tasks', JSON.stringify({ type: 'echo', payload: { message: 'hi' } }));
    expect(res.status).toBe(202);
    const body = await json(res);
    // No agent runs in this file, so no pool is eligible: the task is accepted and parked.
    expect(body).toMatchObject({ type: 'echo', state: 'parked', routing: { strategy: 'weighted', candidates: [], reason: expect.stringMatching(/^no eligible pool/) } });
    expect(res.headers.get('location')).toBe(`/v1/tasks/${encodeURIComponent(body.id)}`);
    const got = await fetch(`${api.url}/v1/tasks/${body.id}`);
    expect(got.status).toBe(200);
    expect(await json(got)).toMatchObject({ id: body.id, state: 'parked', payload: { message: 'hi' }, note: expect.stringMatching(/parked until one is/) });
  });

  it('answers 200 with the same task for a repeated idempotencyKey', async () => {
    const req = JSON.stringify({ type: 'echo', payload: {}, idempotencyKey: 'same-key' });
    const a = await post('/v1/tasks', req);
    const before = await jobKeys();
    const b = await post('/v1/tasks', req);
    expect([a.status, b.status]).toEqual([202, 200]);
    expect((await json(b)).id).toBe((await json(a)).id);
    expect(await jobKeys()).toBe(before);
  });

  const bad: Array<[string, () => Promise<Response>, number, RegExp | undefined]> = [
    ['malformed JSON', () => post('/v1/tasks', '{"type": "echo", '), 400, /not valid JSON/],
    ['a JSON array', () => post('/v1/tasks', '[1,2]'), 400, /must be a JSON object/],
    ['a JSON string', () => post('/v1/tasks', '"echo"'), 400, /must be a JSON object/],
    ['wrong content type', () => post('/v1/tasks', 'type=echo', { 'content-type': 'application/x-www-form-urlencoded' }), 415, /application\/json/],
    ['no content type', () => post('/v1/tasks', '{}', {}), 415, /application\/json/],
    ['no body', () => post('/v1/tasks', undefined), 400, /needs a JSON body/],
    ['a body over the limit', () => post('/v1/tasks', JSON.stringify({ type: 'echo', payload: { message: 'x'.repeat(1_100_000) } })), 413, /SWITCHYARD_MAX_BODY_BYTES/],
    ['an unknown type', () => post('/v1/tasks', JSON.stringify({ type: 'ghost', payload: {} })), 404, /unknown agent type "ghost"/],
    ['a payload failing the schema', () => post('/v1/tasks', JSON.stringify({ type: 'transform', payload: { text: 1, ops: ['shout'] } })), 400, /payload\.text/],
    ['an unknown field', () => post('/v1/tasks', JSON.stringify({ type: 'echo', payload: {}, priorty: 1 })), 400, /priorty/],
    ['a bad option', () => post('/v1/tasks', JSON.stringify({ type: 'echo', payload: {}, attempts: 0 })), 400, /attempts/],
    ['a bad pool name', () => post('/v1/tasks', JSON.stringify({ type: 'echo', payload: {}, pool: 'Bad Pool' })), 400, /pool/],
    ['an empty batch', () => post('/v1/tasks/batch', JSON.stringify({ tasks: [] })), 400, /at least one task/],
    ['a batch with a bad task', () => post('/v1/tasks/batch', JSON.stringify({ tasks: [{ type: 'echo', payload: {} }, { type: 'transform', payload: {} }] })), 400, /tasks\[1\]\.payload\.text/],
    ['a batch over the limit', () => post('/v1/tasks/batch', JSON.stringify({ tasks: Array.from({ length: 1001 }, () => ({ type: 'echo', payload: {} })) })), 400, /at most 1000/],
  ];
  it.each(bad)('rejects %s with a problem+json and enqueues nothing', async (_what, send, status, detail) => {
    const before = await jobKeys();
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = await json(res);
    expect(problem).toMatchObject({ status, title: expect.any(String), type: expect.stringMatching(/^\/problems\//) });
    if (detail) expect(`${problem.detail} ${JSON.stringify(problem.errors ?? [])}`).toMatch(detail);
    expect(await jobKeys()).toBe(before);
  });

  it('gives the field path of each schema issue', async () => {
    const res = await post('/v1/tasks', JSON.stringify({ type: 'transform', payload: { text: 1, ops: ['shout'] } }));
    const problem = await json(res);
    expect(problem.errors.map((e: { path: string }) => e.path)).toEqual(['payload.text', 'payload.ops[0]']);
  });
});

describe('other routes', () => {
  it('accepts a batch and returns its tasks in order', async () => {
    const res = await post('/v1/tasks/batch', JSON.stringify({ tasks: [{ type: 'echo', payload: { i: 0 } }, { type: 'flaky', payload: {} }] }));
    expect(res.status).toBe(202);
    const { tasks } = await json(res);
    expect(tasks.map((t: { type: string }) => t.type)).toEqual(['echo', 'flaky']);
  });

  it('404s an unknown task id and an unknown route as problem+json', async () => {
    for (const path of ['/v1/tasks/echo~nothing', '/v1/tasks/whatever', '/v2/nothing']) {
      const res = await fetch(`${api.url}${path}`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    }
  });

  it('lists agent types with JSON Schemas and defaults', async () => {
    const types = await json(fetch(`${api.url}/v1/agent-types`));
    const transform = types.find((t: { name: string }) => t.name === 'transform');
    expect(transform).toMatchObject({ version: '1.0.0', defaults: { attempts: 3 }, payloadSchema: { type: 'object', required: ['text'] } });
  });

  it('serves health, readiness and Bull Board', async () => {
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    expect(await json(fetch(`${api.url}/readyz`))).toMatchObject({ status: 'ready' });
    const board = await fetch(`${api.url}/admin/queues`);
    expect(board.status).toBe(200);
    expect(await board.text()).toMatch(/<html/i);
    const queues = await json(fetch(`${api.url}/admin/queues/api/queues`));
    expect(queues.queues.map((q: { displayName: string }) => q.displayName)).toEqual(expect.arrayContaining(['echo.default', 'flaky.default', 'transform.default']));
  });
});

describe('API keys', () => {
  const task = JSON.stringify({ type: 'echo', payload: {} });
  const send = (headers: Record<string, string>) =>
    fetch(`${keyed.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: task });

  it('refuses requests without a valid key', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { 'x-api-key': 'k3' }] as Array<Record<string, string>>) {
      const res = await send(headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
    }
  });

  it('accepts Bearer, X-API-Key, and Basic (for browsers)', async () => {
    expect((await send({ authorization: 'Bearer k1' })).status).toBe(202);
    expect((await send({ 'x-api-key': 'k2' })).status).toBe(202);
    const basic = `Basic ${Buffer.from('admin:k1').toString('base64')}`;
    expect((await fetch(`${keyed.url}/admin/queues`, { headers: { authorization: basic } })).status).toBe(200);
    expect((await fetch(`${keyed.url}/admin/queues`)).headers.get('www-authenticate')).toMatch(/Basic/);
  });

  it('leaves liveness and readiness open', async () => {
    expect((await fetch(`${keyed.url}/healthz`)).status).toBe(200);
  });

  it('refuses to listen on a public address without keys', async () => {
    await expect(
      startApi({ config: testConfig(prefix, { port: 0, host: '0.0.0.0' }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog }),
    ).rejects.toThrow(/SWITCHYARD_API_KEYS/);
  });
});

describe('every route needs a key when keys are set', () => {
  // Every route of the app, with a request that would otherwise be valid enough to reach it.
  const routes: Array<[string, string]> = [
    ['POST', '/v1/tasks'], ['POST', '/v1/tasks/batch'], ['GET', '/v1/tasks/echo~x'], ['DELETE', '/v1/tasks/echo~x'],
    ['POST', '/v1/workflows'], ['GET', '/v1/workflows'], ['GET', '/v1/workflows/wf_x'], ['DELETE', '/v1/workflows/wf_x'],
    ['GET', '/v1/dlq'], ['POST', '/v1/dlq/replay'], ['POST', '/v1/dlq/echo~x/replay'],
    ['GET', '/v1/agents'], ['POST', '/v1/agents/x/drain'], ['GET', '/v1/pools'],
    ['GET', '/v1/breakers'], ['POST', '/v1/breakers/echo/default/reset'], ['GET', '/v1/agent-types'],
    ['GET', '/admin/queues'], ['GET', '/admin/queues/api/queues'], ['PUT', '/admin/queues/api/queues/echo.default/pause'],
    ['GET', '/dashboard'], ['GET', '/openapi.json'], ['GET', '/docs'], ['GET', '/metrics'], ['GET', '/no/such/route'],
  ];
  it.each(routes)('%s %s answers 401 without credentials', async (method, path) => {
    const res = await fetch(`${keyed.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(method === 'GET' ? {} : { body: '{}' }) });
    expect(res.status).toBe(401);
  });

  it('leaves /healthz and /readyz open', async () => {
    expect((await fetch(`${keyed.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${keyed.url}/readyz`)).status).toBe(200);
  });
});

describe('headers and cross-site requests', () => {
  it('sends security headers: the full set on browser pages, nosniff on JSON answers', async () => {
    const page = await fetch(`${api.url}/admin/queues`);
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('strict-transport-security')).toMatch(/max-age/);
    for (const path of ['/healthz', '/v1/agent-types', '/v1/tasks/echo~nope']) {
      expect((await fetch(`${api.url}${path}`)).headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it("refuses Bull Board actions from another site, and allows them from the board's own page", async () => {
    const url = `${api.url}/admin/queues/api/queues/echo.default/pause`;
    expect((await fetch(url, { method: 'PUT', headers: { origin: 'https://evil.example' } })).status).toBe(403);
    expect((await fetch(url, { method: 'PUT', headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await fetch(url, { method: 'PUT', headers: { origin: 'null' } })).status).toBe(403);
    const own = await fetch(url, { method: 'PUT', headers: { origin: api.url, 'sec-fetch-site': 'same-origin' } });
    expect(own.status).not.toBe(403);
    await fetch(`${api.url}/admin/queues/api/queues/echo.default/resume`, { method: 'PUT', headers: { origin: api.url } });
  });
});
