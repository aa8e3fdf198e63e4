import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { freePort, pingRedis, resolveRedis, spawnRedis } from '../../src/redis/embedded.ts';
import { REQUEST_DEADLINE_MS } from '../../src/redis/connection.ts';
import demoTypes from '../../queues/index.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { json } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

// This file starts and stops its own redis-server on a free port; it never touches the shared one.
const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-redis-'));
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('embedded redis-server', () => {
  it('spawns with AOF on under the data dir and stops cleanly', async () => {
    const redis = await spawnRedis({ dataDir: join(dataDir, 'a') });
    stops.push(redis.stop);
    const client = new Redis(redis.url);
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    await client.set('k', 'v');
    await client.quit();
    await redis.stop();
    expect(await pingRedis('127.0.0.1', redis.port)).toBe(false);
    expect(readdirSync(join(dataDir, 'a')).some((f) => f.startsWith('appendonly'))).toBe(true);
  });

  it('prefers REDIS_URL, and says how to install redis-server when there is none', async () => {
    expect(await resolveRedis({ redisUrl: 'redis://example:1', dataDir })).toMatchObject({ url: 'redis://example:1', source: 'REDIS_URL' });
    await expect(spawnRedis({ dataDir: join(dataDir, 'b'), binary: 'no-such-redis-server' })).rejects.toThrow(/apt-get install redis-server/);
  });
});

describe('API while Redis is down', () => {
  let api: ApiServer;
  it('answers 503 with Retry-After, keeps validating, and recovers by itself when Redis returns', async () => {
    const port = await freePort();
    let redis = await spawnRedis({ dataDir: join(dataDir, 'c'), port });
    stops.push(() => redis.stop());
    api = await startApi({ config: testConfig('outage', { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: redis.url, log: silentLog });
    stops.push(() => api.close());
    const task = () => fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'echo', payload: {} }) });

    const first = await waitFor(async () => {
      const res = await task();
      return res.status === 202 ? ((await json(res)) as { id: string }) : undefined;
    }, { what: 'a first task accepted' });
    await redis.stop();

    const down = await waitFor(async () => {
      const res = await task();
      return res.status === 503 ? res : undefined;
    }, { what: '503 while redis is down' });
    expect(down.headers.get('retry-after')).toBe('5');
    expect(down.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await json(down)).detail).toMatch(/Redis is unreachable/);
    expect((await fetch(`${api.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${api.url}/v1/tasks/echo~abc`)).status).toBe(503);
    const scrape = Date.now();
    // The scrape still succeeds, at once (not after its reads hang), saying only that Redis is down.
    const metricsDown = await fetch(`${api.url}/metrics`);
    expect(metricsDown.status).toBe(200);
    expect(await metricsDown.text()).toMatch(/^switchyard_redis_up 0$/m);
    expect(Date.now() - scrape).toBeLessThan(1000);
    const invalid = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"echo","payload":{},"x":1}' });
    expect(invalid.status).toBe(400);

    redis = await spawnRedis({ dataDir: join(dataDir, 'c'), port });
    await waitFor(async () => (await task()).status === 202, { timeoutMs: 20_000, what: 'the API to recover' });
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${api.url}/metrics`)).text()).toMatch(/^switchyard_redis_up 1$/m);
    // Acknowledged before the restart, kept by the AOF across it.
    expect(await json(fetch(`${api.url}/v1/tasks/${first.id}`))).toMatchObject({ id: first.id, state: 'parked' });
  });
});

describe('API while Redis hangs', () => {
  it('answers 503 after the request deadline when Redis accepts connections but does not answer', async () => {
    const port = await freePort();
    const redis = await spawnRedis({ dataDir: join(dataDir, 'd'), port });
    stops.push(() => redis.stop());
    const api = await startApi({ config: testConfig('hang', { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: redis.url, log: silentLog });
    stops.push(() => api.close());
    const task = () => fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'echo', payload: {} }) });
    await waitFor(async () => (await task()).status === 202, { what: 'a first task accepted' });
    redis.process.kill('SIGSTOP'); // alive, connected, silent
    try {
      const started = Date.now();
      const res = await task();
      const took = Date.now() - started;
      expect(res.status).toBe(503);
      expect((await json(res)).detail).toMatch(/Redis is unreachable/);
      expect(took).toBeGreaterThanOrEqual(REQUEST_DEADLINE_MS - 100);
      expect(took).toBeLessThan(REQUEST_DEADLINE_MS + 5000);
    } finally {
      redis.process.kill('SIGCONT');
    }
    await waitFor(async () => (await task()).status === 202, { timeoutMs: 20_000, what: 'the API to answer again' });
  }, 60_000);
});

