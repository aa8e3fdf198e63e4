/**
 * SWITCHYARD_WAIT_REPLICAS against a private master (and, later, a replica of it): a task or a
 * workflow run is acknowledged only once a replica holds it; without one the answer is a 503
 * that says what happened and how to retry safely, and the retry with the same key creates no
 * second task once a replica is there.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { spawnRedis } from '../../src/redis/embedded.ts';
import demoTypes from '../../queues/index.ts';
import { json } from '../support/http.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-replication-'));
let master: Awaited<ReturnType<typeof spawnRedis>>;
let replica: Awaited<ReturnType<typeof spawnRedis>> | undefined;
let api: ApiServer;

beforeAll(async () => {
  master = await spawnRedis({ dataDir: join(dir, 'master') });
  const config = testConfig('repl', { port: 0, waitReplicas: { count: 1, timeoutMs: 2000 } });
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: master.url, log: silentLog });
});
afterAll(async () => {
  await api?.close();
  await replica?.stop();
  await master?.stop();
});

const post = (path: string, body: unknown) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const task = { type: 'echo', payload: { message: 'kept twice' }, idempotencyKey: 'k1' };

describe('SWITCHYARD_WAIT_REPLICAS=1', () => {
  it('answers 503 NOT_REPLICATED, with what to do, while no replica confirms', async () => {
    const res = await post('/v1/tasks', task);
    expect(res.status).toBe(503);
    const problem = await json(res);
    expect(problem).toMatchObject({ status: 503, title: 'Not replicated', type: expect.stringMatching(/^\/problems\//) });
    expect(problem.detail).toMatch(/only 0 of the 1 replica\(s\) SWITCHYARD_WAIT_REPLICAS asks for confirmed it within 2000 ms.*same idempotencyKey/);
    const run = await post('/v1/workflows', { nodes: [{ id: 'a', type: 'echo', payload: { message: 'x' } }] });
    expect(run.status).toBe(503);
  });

  it('acknowledges once a replica holds the write, and the retry finds the first task instead of adding one', async () => {
    replica = await spawnRedis({ dataDir: join(dir, 'replica'), args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const first = await waitFor(async () => {
      const res = await post('/v1/tasks', task);
      return res.status === 503 ? undefined : res;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'the replica to confirm' });
    expect(first.status).toBe(200); // the 503'd write was kept: the retry with its key found it
    const again = await post('/v1/tasks', { ...task, idempotencyKey: 'k2' });
    expect(again.status).toBe(202);
    const run = await post('/v1/workflows', { nodes: [{ id: 'a', type: 'echo', payload: { message: 'x' } }] });
    expect(run.status).toBe(202);
  });
});
