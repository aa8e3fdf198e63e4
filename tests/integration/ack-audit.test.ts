/**
 * A Redis that restarts without the tasks it acknowledged is reported, by task id, instead of the
 * tasks vanishing silently (AckAudit). Each case runs an API on a redis-server of its own, kills
 * Redis with SIGKILL right after a batch was acknowledged, and starts it again on the same port.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { spawnRedis } from '../../src/redis/embedded.ts';
import demoTypes from '../../queues/index.ts';
import { testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-ack-audit-'));
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

type Line = { level: number; msg: string; lost?: number; checked?: number; tasks?: Array<{ id: string }> };

async function acknowledgeThenRestart(name: string, args: string[]) {
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) });
  let redis = await spawnRedis({ dataDir: join(dir, name), args });
  cleanups.push(() => redis.stop());
  const api: ApiServer = await startApi({ config: testConfig('audit', { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: redis.url, log });
  cleanups.push(() => api.close());
  const res = await fetch(`${api.url}/v1/tasks/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tasks: Array.from({ length: 20 }, (_, i) => ({ type: 'echo', payload: { message: `m${i}` } })) }),
  });
  expect(res.status).toBe(202);
  const ids = ((await res.json()) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id);
  redis.process.kill('SIGKILL');
  await new Promise((r) => redis.process.once('exit', r));
  redis = await spawnRedis({ dataDir: join(dir, name), port: redis.port, args });
  return { ids, lines };
}

describe('acknowledged tasks after a Redis restart', () => {
  it('are reported lost, by id, when Redis kept no AOF', async () => {
    const { ids, lines } = await acknowledgeThenRestart('no-aof', ['--appendonly', 'no']);
    const report = await waitFor(() => lines.find((l) => l.level === 50 && /LOST/.test(l.msg)), { what: 'the loss to be reported', timeoutMs: 20_000 });
    expect(report.lost).toBe(20);
    expect(report.tasks!.map((t) => t.id).sort()).toEqual([...ids].sort());
    expect(report.msg).toMatch(/set appendfsync always/);
  });

  it('are found again, and said to be, with appendfsync always', async () => {
    const { lines } = await acknowledgeThenRestart('always', []);
    const report = await waitFor(() => lines.find((l) => /redis restarted/.test(l.msg)), { what: 'the audit to run', timeoutMs: 20_000 });
    expect(report).toMatchObject({ level: 30, checked: 20 });
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});
