/**
 * The HTTP edge against hostile input (issue 18, items 11, 12, 14, 15): cross-site writes, DNS
 * rebinding, connection floods, oversized bodies, Bull Board's loose ends and non-finite numbers.
 * Real API servers on a real Redis; requests that must control Host or the socket go out raw.
 */
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import type { Config } from '../../src/config/env.ts';
import demoTypes from '../../queues/index.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { json } from '../support/http.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('http-security');
const catalogue = new Catalogue(demoTypes);
const MAX_BODY = 64 * 1024;
/** Small connection settings, so the tests see the caps and timeouts act within a second. */
const CONNECTIONS: Config['connections'] = { max: 40, perAddress: 5, headersTimeoutMs: 400, requestTimeoutMs: 1000, keepAliveTimeoutMs: 400 };

let open: ApiServer; // no keys: loopback clients, loopback Host names and ALLOWED only
let keyed: ApiServer;
let edge: ApiServer; // no keys, small connection caps and timeouts, a rate limit of one task
const ALLOWED = 'switchyard.internal';

beforeAll(async () => {
  const start = (overrides: Partial<Config>) => startApi({ config: testConfig(prefix, { port: 0, maxBodyBytes: MAX_BODY, ...overrides }), catalogue, redisUrl: REDIS_URL, log: silentLog });
  open = await start({ allowedHosts: [ALLOWED] });
  keyed = await start({ apiKeys: ['k1'] });
  edge = await start({ connections: CONNECTIONS, rateLimit: { perSecond: 0.001, burst: 1 } });
});
afterAll(async () => {
  await Promise.all([open?.close(), keyed?.close(), edge?.close()]);
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request on its own connection, Host and every header as given (fetch will not send a made-up Host). */
function raw(api: ApiServer, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // Always a Content-Length with a body: Node's client sends a DELETE body without one.
    const length = body === undefined || 'content-length' in headers ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = httpRequest({ host: '127.0.0.1', port: api.port, method, path, headers: { ...headers, ...length }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const expectProblem = (res: RawResponse, status: number, detail?: RegExp) => {
  expect(res.status, res.text).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.text) as { status: number; detail: string; errors?: unknown };
  expect(body.status).toBe(status);
  if (detail) expect(`${body.detail} ${JSON.stringify(body.errors ?? [])}`).toMatch(detail);
  return body;
};

const jobKeys = async () => (await keysMatching(redis, `${prefix}:{*}:*~*`)).length;
const basic = `Basic ${Buffer.from('admin:k1').toString('base64')}`;
const TASK = JSON.stringify({ type: 'echo', payload: { message: 'hi' } });

describe('cross-site requests (item 11)', () => {
  // What a page on another origin can send without a preflight: an empty text/plain form post.
  const form = (extra: Record<string, string> = {}) => ({ 'content-type': 'text/plain', 'content-length': '0', ...extra });

  it.each([
    ['POST', '/v1/dlq/replay'],
    ['POST', '/v1/breakers/echo/default/reset'],
    ['POST', '/v1/tasks'],
    ['DELETE', '/v1/tasks/echo~x'],
    ['PUT', '/admin/queues/api/queues/%7Becho.default%7D/pause'],
  ])('refuses %s %s from another origin with 403, with and without keys', async (method, path) => {
    expectProblem(await raw(open, method, path, form({ origin: 'https://evil.example' })), 403, /cross-site/);
    expectProblem(await raw(open, method, path, form({ 'sec-fetch-site': 'cross-site' })), 403, /cross-site/);
    expectProblem(await raw(open, method, path, form({ 'sec-fetch-site': 'same-site' })), 403, /cross-site|same-site/);
    expectProblem(await raw(open, method, path, form({ origin: 'null' })), 403);
    // The browser holds the Basic-auth key from opening the dashboard: still refused.
    expectProblem(await raw(keyed, method, path, form({ origin: 'https://evil.example', authorization: basic })), 403);
  });

  it('refuses a non-JSON content type on every state-changing route, bodiless ones included (415)', async () => {
    for (const [method, path] of [
      ['POST', '/v1/dlq/replay'],
      ['POST', '/v1/breakers/echo/default/reset'],
      ['POST', '/v1/dlq/echo~x/replay'],
      ['POST', '/v1/agents/x/drain'],
      ['DELETE', '/v1/workflows/wf_x'],
    ] as const) {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        expectProblem(await raw(open, method, path, { 'content-type': type, 'content-length': '0' }), 415, /application\/json/);
      }
      // A body without any Content-Type is not JSON either.
      expectProblem(await raw(open, method, path, {}, 'x=1'), 415);
    }
  });

  it('takes a bodiless route with no body, or an empty JSON object; anything else in the body is a 400', async () => {
    const reset = '/v1/breakers/echo/default/reset';
    expect((await raw(open, 'POST', reset)).status).toBe(200);
    expect((await raw(open, 'POST', reset, { 'content-type': 'application/json' }, '{}')).status).toBe(200);
    expect((await raw(open, 'POST', reset, { 'content-type': 'application/json', 'content-length': '0' })).status).toBe(200);
    expectProblem(await raw(open, 'POST', reset, { 'content-type': 'application/json' }, '{"force":true}'), 400, /takes no body/);
  });

  it("accepts writes from the API's own origin and from clients that send no Origin", async () => {
    const headers = { 'content-type': 'application/json' };
    expect((await raw(open, 'POST', '/v1/tasks', { ...headers, origin: open.url, 'sec-fetch-site': 'same-origin' }, TASK)).status).toBe(202);
    expect((await raw(open, 'POST', '/v1/tasks', headers, TASK)).status).toBe(202);
    expect((await raw(open, 'POST', '/v1/tasks', { ...headers, 'sec-fetch-site': 'none' }, TASK)).status).toBe(202);
  });
});

describe('Host names without keys (item 12)', () => {
  it.each(['attacker.test', 'attacker.test:80', '127.0.0.1.nip.io', 'localhost.attacker.test', 'switchyard.internal.evil', '127.0.0.1@attacker.test'])('refuses Host %j with 421', async (host) => {
    const before = await jobKeys();
    expectProblem(await raw(open, 'GET', '/v1/agents', { host }), 421, /SWITCHYARD_ALLOWED_HOSTS/);
    expectProblem(await raw(open, 'GET', '/metrics', { host }), 421);
    expectProblem(await raw(open, 'POST', '/v1/tasks', { host, 'content-type': 'application/json' }, TASK), 421);
    expect(await jobKeys()).toBe(before);
  });

  it('refuses a request without a Host (HTTP/1.0)', async () => {
    const s = await openSocket(open);
    s.write('GET /v1/agents HTTP/1.0\r\n\r\n');
    expect(await s.ended).toMatch(/^HTTP\/1\.1 421[\s\S]*application\/problem\+json/);
  });

  it.each(['localhost', 'LOCALHOST:3000', '127.0.0.1', '127.0.0.1:1', '[::1]', '[::1]:8080', ALLOWED, `${ALLOWED}:443`])('accepts Host %j', async (host) => {
    expect((await raw(open, 'GET', '/v1/agent-types', { host })).status).toBe(200);
  });

  it('does not check Host when API keys are set (a key is what protects the API then)', async () => {
    expect((await raw(keyed, 'GET', '/v1/agent-types', { host: 'api.example.com', authorization: 'Bearer k1' })).status).toBe(200);
  });
});

/** A socket from a given loopback address; resolves once connected. */
function openSocket(api: ApiServer, localAddress = '127.0.0.1'): Promise<Socket & { ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: api.port, localAddress });
    let received = '';
    s.on('data', (d: Buffer) => (received += d.toString('utf8')));
    const closed = new Promise<string>((r) => s.on('close', () => r(received)));
    s.on('error', () => undefined);
    s.once('connect', () => resolve(Object.assign(s, { ended: closed })));
    s.once('error', reject);
  });
}

const isClosed = (s: Socket) => s.destroyed || s.readyState === 'closed';

describe('connection caps and timeouts (item 14)', () => {
  it('closes connections over the per-address cap with a 429, and a fresh connection from elsewhere still gets /healthz', async () => {
    const sockets = await Promise.all(Array.from({ length: CONNECTIONS.perAddress + 3 }, () => openSocket(edge, '127.0.0.2')));
    try {
      const over = await waitFor(() => {
        const gone = sockets.filter(isClosed);
        return gone.length >= 3 && gone;
      }, { timeoutMs: 5000, what: 'the connections over the cap to be closed' });
      expect(over).toHaveLength(3);
      expect(await over[0]!.ended).toMatch(/^HTTP\/1\.1 429[\s\S]*application\/problem\+json[\s\S]*SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS/);
      expect(sockets.filter((s) => !isClosed(s))).toHaveLength(CONNECTIONS.perAddress);
      const health = await raw(edge, 'GET', '/healthz');
      expect(health.status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('holds at most SWITCHYARD_MAX_CONNECTIONS in all, and frees a place when one closes', async () => {
    // From many loopback addresses, so the per-address cap does not act first.
    const sockets = await Promise.all(Array.from({ length: CONNECTIONS.max }, (_, i) => openSocket(edge, `127.0.1.${(i % CONNECTIONS.perAddress) + 1 + 10 * Math.floor(i / CONNECTIONS.perAddress)}`)));
    try {
      const extra = await openSocket(edge, '127.0.2.1');
      await waitFor(() => isClosed(extra), { timeoutMs: 5000, what: 'the connection over the total cap to be closed' });
      sockets.pop()!.destroy();
      await waitFor(async () => (await raw(edge, 'GET', '/healthz').catch(() => undefined))?.status === 200, { timeoutMs: 5000, what: '/healthz once a place is free' });
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('closes a connection that sends nothing, or only part of a request head, after the headers timeout', async () => {
    const silent = await openSocket(edge);
    const partial = await openSocket(edge);
    partial.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const t0 = Date.now();
    await Promise.all([silent.ended, partial.ended]);
    // Bounded by the timeout plus Node's check interval, not Node's defaults (60 s, checked every 30 s).
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await partial.ended).toMatch(/^HTTP\/1\.1 408[\s\S]*application\/problem\+json/);
  });

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const s = await openSocket(edge);
    s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => !isClosed(s) && s.bytesRead > 0, { what: 'the /healthz answer' });
    const t0 = Date.now();
    const received = await s.ended;
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

/**
 * Sends a request head announcing `announced` bytes (or chunked) and writes its body as fast as the
 * server takes it; returns what the server answered and how much of the body it took.
 */
async function flood(api: ApiServer, path: string, announced: number | 'chunked', headers: Record<string, string> = {}): Promise<{ answer: string; written: number }> {
  const s = await openSocket(api);
  const head = Object.entries({ host: '127.0.0.1', 'content-type': 'application/json', ...headers, ...(announced === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(announced) }) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  s.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
  const piece = Buffer.alloc(64 * 1024, 0x20);
  const total = announced === 'chunked' ? 100 * 1024 * 1024 : announced;
  let written = 0;
  while (written < total && !isClosed(s)) {
    const chunk = announced === 'chunked' ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
    const ok = await new Promise<boolean>((resolve) => {
      const flushed = s.write(chunk, (err) => resolve(!err));
      if (!flushed) s.once('drain', () => undefined);
    });
    if (!ok) break;
    written += piece.length;
  }
  return { answer: await s.ended, written };
}

describe('smaller items (item 15)', () => {
  it('keys the rate limit on the address without API keys: a made-up bearer token is not a new client', async () => {
    const send = (token: string) => raw(edge, 'POST', '/v1/tasks', { 'content-type': 'application/json', authorization: `Bearer ${token}` }, TASK);
    expect((await send('made-up-1')).status).toBe(202);
    expectProblem(await send('made-up-2'), 429);
    expectProblem(await send('made-up-3'), 429);
  });

  it('refuses a HOST that only starts like a loopback address (it is resolved, every address checked)', async () => {
    const config = testConfig(prefix, { port: 0, host: '127.0.0.1.example.invalid' });
    await expect(startApi({ config, catalogue, redisUrl: REDIS_URL, log: silentLog })).rejects.toThrow(/HOST=127\.0\.0\.1\.example\.invalid[\s\S]*SWITCHYARD_API_KEYS/);
  });

  it('reads the auth scheme name in any case', async () => {
    for (const authorization of ['BEARER k1', 'bearer k1', `basic ${Buffer.from(':k1').toString('base64')}`]) {
      expect((await raw(keyed, 'POST', '/v1/tasks', { 'content-type': 'application/json', authorization }, TASK)).status).toBe(202);
    }
  });

  it.each([[100 * 1024 * 1024], ['chunked' as const]])('stops reading a body over the limit (%s), answers 413 and closes', async (announced) => {
    const { answer, written } = await flood(open, '/v1/tasks', announced);
    expect(answer).toMatch(/^HTTP\/1\.1 413[\s\S]*application\/problem\+json[\s\S]*SWITCHYARD_MAX_BODY_BYTES/);
    // The limit plus what the kernel's socket buffers hold, not the 100 MB.
    expect(written).toBeLessThan(16 * 1024 * 1024);
  });

  it("answers Bull Board's oversized and malformed bodies with problem+json", async () => {
    const pause = '/admin/queues/api/queues/%7Becho.default%7D/pause';
    expectProblem(await raw(open, 'PUT', pause, { 'content-type': 'application/json' }, JSON.stringify({ pad: 'x'.repeat(MAX_BODY + 10) })), 413);
    expectProblem(await raw(open, 'PUT', pause, { 'content-type': 'application/json' }, '{"a":'), 400);
  });

  it('serves no third-party assets on Bull Board and sends no X-Powered-By anywhere', async () => {
    const page = await raw(open, 'GET', '/admin/queues');
    expect(page.status).toBe(200);
    expect(page.text).not.toMatch(/fonts\.googleapis|https?:\/\/(?!127\.0\.0\.1)/);
    expect(String(page.headers['content-security-policy'])).toMatch(/default-src 'self'/);
    for (const path of ['/admin/queues', '/admin/queues/api/queues', '/dashboard', '/docs', '/v1/agent-types', '/healthz', '/no/such/route']) {
      expect((await raw(open, 'GET', path)).headers['x-powered-by'], path).toBeUndefined();
    }
  });

  it('refuses Bull Board actions that write job data Switchyard never validated (add job, edit data)', async () => {
    const before = await jobKeys();
    const same = { 'content-type': 'application/json', origin: open.url };
    const add = await raw(open, 'POST', '/admin/queues/api/queues/%7Becho.default%7D/add', same, JSON.stringify({ name: 'echo', data: {}, options: {} }));
    expectProblem(add, 403, /POST \/v1\/tasks/);
    const edit = await raw(open, 'PATCH', '/admin/queues/api/queues/%7Becho.default%7D/echo~x/update-data', same, JSON.stringify({ data: {} }));
    expectProblem(edit, 403, /POST \/v1\/tasks/);
    expect(await jobKeys()).toBe(before);
    const list = await raw(open, 'GET', '/v1/dlq');
    expect(list.status).toBe(200);
  });

  it('refuses numbers JSON cannot carry (1e400, -1e400) with a 400 naming the path', async () => {
    const before = await jobKeys();
    const t = { 'content-type': 'application/json' };
    expectProblem(await raw(open, 'POST', '/v1/tasks', t, '{"type":"echo","payload":{"message":"x","n":1e400}}'), 400, /payload\.n/);
    expectProblem(await raw(open, 'POST', '/v1/tasks/batch', t, '{"tasks":[{"type":"echo","payload":{"message":"x"}},{"type":"echo","payload":{"a":[0,-1e400]}}]}'), 400, /tasks\[1\]\.payload\.a\[1\]/);
    expectProblem(await raw(open, 'POST', '/v1/dlq/replay', t, '{"limit":1e999}'), 400, /limit/);
    expect(await jobKeys()).toBe(before);
    const ok = await json(fetch(`${open.url}/v1/tasks`, { method: 'POST', headers: t, body: '{"type":"echo","payload":{"message":"x","n":1e300}}' }));
    expect(ok.id).toBeDefined();
  });
});
