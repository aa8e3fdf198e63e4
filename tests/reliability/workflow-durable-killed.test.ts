/**
 * Durable workflow nodes under faults: runs asleep (a sleep node between two task nodes) and runs
 * waiting for a signal, while every API process is SIGKILLed and Redis is SIGKILLed and restarted
 * (AOF, appendfsync always). Started again, the API processes wake every sleeper on time (within 5 s
 * of its wake time, or of the API being back if it was due meanwhile: a generous bound for a loaded CI
 * machine; `npm run bench -- workflow-durable` measures the lateness on a quiet one, p99 63 ms), deliver each signal
 * exactly once (a resent signal is a 409), and every run completes with its last node run once (the
 * `flaky` agent's ledger).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pingRedis, spawnRedis } from '../../src/redis/embedded.ts';
import { readLedger } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const SLEEPERS = 20;
const WAITERS = 5;
const SLEEP_MS = 8000;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-durable-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let env: Record<string, string>;
let apis: ApiProcess[] = [];

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'dk', FLAKY_LEDGER: ledgerFile, SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500' };
  await startAgentProcess('flaky', env, ['--concurrency', '20']);
  apis = await Promise.all([0, 1].map(() => startApiProcess(env)));
}, 120_000);

afterAll(async () => {
  await redis?.stop();
});

const post = (api: ApiProcess, path: string, body: unknown) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const workflow = (middle: Record<string, unknown>) => ({
  nodes: [
    { id: 'first', type: 'flaky', payload: {} },
    { id: 'middle', ...middle, dependsOn: ['first'] },
    { id: 'last', type: 'flaky', payload: {}, dependsOn: ['middle'] },
  ],
});

describe('sleeping and waiting runs while every API process and Redis die', () => {
  it('wake on time, take each signal once, and complete, running their last node once', async () => {
    const start = async (middle: Record<string, unknown>) => {
      const res = await post(apis[0]!, '/v1/workflows', workflow(middle));
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    };
    const sleepers = await Promise.all(Array.from({ length: SLEEPERS }, () => start({ kind: 'sleep', durationMs: SLEEP_MS })));
    const waiters = await Promise.all(Array.from({ length: WAITERS }, () => start({ kind: 'signal', name: 'approve' })));
    // Everything asleep or waiting: each run's first node done.
    await waitFor(() => readLedger(ledgerFile).filter((l) => l.ev === 'end').length >= SLEEPERS + WAITERS, { timeoutMs: 30_000, what: 'every first node done' });

    await Promise.all(apis.map((a) => a.kill('SIGKILL')));
    redis.process.kill('SIGKILL');
    const port = redis.port;
    await waitFor(async () => !(await pingRedis('127.0.0.1', port, 200)), { what: 'Redis down' });
    redis = await spawnRedis({ dataDir: join(dir, 'redis'), port });
    apis = await Promise.all([0, 1].map(() => startApiProcess(env)));
    const back = Date.now();

    const sent = await Promise.all(waiters.map((id) => post(apis[1]!, `/v1/workflows/${id}/signals/approve`, { ok: true })));
    // 200 where the node was waiting, 202 where the dead engine had not started it yet (kept for it).
    for (const r of sent) expect([200, 202]).toContain(r.status);
    const again = await Promise.all(waiters.map((id) => post(apis[0]!, `/v1/workflows/${id}/signals/approve`, { ok: 'twice' })));
    expect(again.map((r) => r.status)).toEqual(Array(WAITERS).fill(409));

    const views = await waitFor(async () => {
      const vs = await Promise.all([...sleepers, ...waiters].map((id) => fetch(`${apis[0]!.url}/v1/workflows/${id}`).then((r) => r.json() as Promise<{ state: string; nodes: Array<{ id: string; wakeAt?: string; finishedAt?: string }> }>)));
      return vs.every((v) => v.state === 'completed') ? vs : undefined;
    }, { timeoutMs: 60_000, what: 'every run completed' });
    const late = views.slice(0, SLEEPERS).map((v) => {
      const nap = v.nodes.find((n) => n.id === 'middle')!;
      return Date.parse(nap.finishedAt!) - Math.max(Date.parse(nap.wakeAt!), back);
    });
    expect(Math.max(...late), `ms after its wake time (or the API's return) a sleeper woke: ${late.join(', ')}`).toBeLessThan(5000);
    const lastRuns = readLedger(ledgerFile).filter((l) => l.ev === 'start' && l.id.endsWith('.last'));
    expect(lastRuns).toHaveLength(SLEEPERS + WAITERS);
    console.info(`[reliability] ${SLEEPERS} sleeping and ${WAITERS} waiting runs through SIGKILL of every API process and a Redis restart: all completed, latest wake ${Math.max(...late)} ms after due, each signal once`);
  }, 120_000);
});
