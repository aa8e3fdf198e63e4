/**
 * Completion callbacks: a task or run with `callback: {url}` gets its final view POSTed there when it
 * ends (completed, dead, cancelled), signed with HMAC-SHA256 over `<t>.<body>` (verifyCallback checks
 * it); a receiver that fails gets the same bytes again with backoff until it answers 2xx. At submit:
 * only http(s), only allowed hosts, and only with a signing secret configured (400 naming the field,
 * nothing written).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { verifyCallback } from '../../src/model/callback.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import demoTypes from '../../queues/index.ts';
import echo from '../../workers/echo.ts';
import flaky from '../../workers/flaky.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { REDIS_URL } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const SECRET = 'a-test-secret-of-some-length';
const { prefix } = useRedisPrefix('callbacks');
const unsigned = useRedisPrefix('callbacks-nosecret');
let api: ApiServer;
let plain: ApiServer;
const agents: Agent[] = [];
let receiver: Server;
let target: string;
/** Requests the receiver got; `failFirst` answers 500 to that many first requests of each delivery. */
const got: Array<{ headers: IncomingHttpHeaders; body: string; status: number }> = [];
let failFirst = 0;
const tries = new Map<string, number>();

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const id = String(req.headers['switchyard-delivery']);
      const n = (tries.get(id) ?? 0) + 1;
      tries.set(id, n);
      const status = n <= failFirst ? 500 : 204;
      got.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  target = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const config = testConfig(prefix, { port: 0, callbacks: { secret: SECRET, hosts: ['127.0.0.1'] } });
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  plain = await startApi({ config: testConfig(unsigned.prefix, { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  agents.push(await Agent.start({ definition: echo, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 4 }));
  agents.push(await Agent.start({ definition: flaky, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 4 }));
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await Promise.all([api.close(), plain.close()]);
  receiver.close();
});

const post = (base: string, path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const delivered = (id: string) =>
  waitFor(() => got.find((g) => g.status < 300 && JSON.parse(g.body).id === id), { timeoutMs: 20_000, what: `the callback of ${id}` });

describe('completion callbacks', () => {
  it('POST a completed task\'s final view, signed', async () => {
    const res = await post(api.url, '/v1/tasks', { type: 'echo', payload: { message: 'call me' }, callback: { url: target } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const hit = await delivered(id);
    const body = JSON.parse(hit.body);
    expect(body).toMatchObject({ kind: 'task', id, state: 'completed', view: { id, state: 'completed', result: { echoed: { message: 'call me' } } } });
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['switchyard-delivery']).toBe(`cb~task~${id}~completed`);
    expect(verifyCallback(SECRET, String(hit.headers['switchyard-signature']), hit.body)).toBe(true);
    expect(verifyCallback('another-secret-entirely', String(hit.headers['switchyard-signature']), hit.body)).toBe(false);
    expect(verifyCallback(SECRET, String(hit.headers['switchyard-signature']), `${hit.body} `)).toBe(false);
  });

  it('POST a dead task\'s and a finished run\'s views; a task cancelled before it ran', async () => {
    const dead = (await (await post(api.url, '/v1/tasks', { type: 'flaky', payload: { failRate: 1, fatal: true }, callback: { url: target } })).json()) as { id: string };
    expect(JSON.parse((await delivered(dead.id)).body)).toMatchObject({ state: 'dead', view: { state: 'dead' } });
    const run = (await (await post(api.url, '/v1/workflows', { nodes: [{ id: 'a', type: 'echo', payload: {} }], callback: { url: target } })).json()) as { id: string };
    expect(JSON.parse((await delivered(run.id)).body)).toMatchObject({ kind: 'run', state: 'completed', view: { id: run.id, state: 'completed', nodes: [{ id: 'a', state: 'done' }] } });
    const later = (await (await post(api.url, '/v1/tasks', { type: 'echo', payload: {}, delayMs: 60_000, callback: { url: target } })).json()) as { id: string };
    expect((await fetch(`${api.url}/v1/tasks/${later.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(JSON.parse((await delivered(later.id)).body)).toMatchObject({ state: 'cancelled' });
  });

  it('retries a receiver that fails with the same bytes until it answers 2xx', async () => {
    failFirst = 2;
    try {
      const { id } = (await (await post(api.url, '/v1/tasks', { type: 'echo', payload: { message: 'again' }, callback: { url: target } })).json()) as { id: string };
      await delivered(id);
      const attempts = got.filter((g) => JSON.parse(g.body).id === id);
      expect(attempts.map((a) => a.status)).toEqual([500, 500, 204]);
      expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
      for (const a of attempts) expect(verifyCallback(SECRET, String(a.headers['switchyard-signature']), a.body)).toBe(true);
    } finally {
      failFirst = 0;
    }
  }, 30_000);

  it('refuses callbacks that are not http(s), go to a host not allowed, or cannot be signed: 400 naming the field, nothing written', async () => {
    const cases: Array<[string, unknown, string]> = [
      [api.url, { type: 'echo', payload: {}, callback: { url: 'ftp://127.0.0.1/x' } }, 'callback.url'],
      [api.url, { type: 'echo', payload: {}, callback: { url: 'not a url' } }, 'callback.url'],
      [api.url, { type: 'echo', payload: {}, callback: { url: 'http://evil.example/x' } }, 'callback.url'],
      [plain.url, { type: 'echo', payload: {}, callback: { url: target } }, 'callback.url'],
    ];
    for (const [base, body, path] of cases) {
      const res = await post(base, '/v1/tasks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const problem = (await res.json()) as { errors: Array<{ path: string; message: string }> };
      expect(problem.errors[0]!.path).toBe(path);
    }
    const run = await post(api.url, '/v1/workflows', { nodes: [{ id: 'a', type: 'echo', payload: {} }], callback: { url: 'http://10.0.0.1/x' } });
    expect(run.status).toBe(400);
    expect(((await run.json()) as { detail: string }).detail).toMatch(/host 10\.0\.0\.1 is not allowed/);
    const noSecret = await post(plain.url, '/v1/tasks', { type: 'echo', payload: {}, callback: { url: target } });
    expect(((await noSecret.json()) as { detail: string }).detail).toMatch(/SWITCHYARD_CALLBACK_SECRET/);
    const node = await post(api.url, '/v1/workflows', { nodes: [{ id: 'a', type: 'echo', payload: {}, callback: { url: target } }] });
    expect(node.status).toBe(400);
  });
});
