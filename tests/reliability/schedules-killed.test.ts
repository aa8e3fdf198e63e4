/**
 * Schedules under faults: a schedule firing every 2 s with three API processes, two of them killed
 * with SIGKILL (and replaced) while it runs, and Redis killed and restarted (AOF, appendfsync always).
 * Reconciled from the ledger the `flaky` agent writes: every tick ran exactly once, and no tick is
 * missing but those that fell while Redis was down (they fire once, late: misfire `once`). The issue's
 * full figure (every minute for 10 minutes, one API killed every 2 minutes) is `npm run bench -- flow`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pingRedis, spawnRedis } from '../../src/redis/embedded.ts';
import { firedBy } from '../../src/model/schedule.ts';
import { readLedger } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const EVERY_MS = 2000;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-schedules-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let port: number;
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let env: Record<string, string>;
const apis: ApiProcess[] = [];

beforeAll(async () => {
  port = await freePort();
  redis = await spawnRedis({ dataDir: join(dir, 'redis'), port });
  env = {
    REDIS_URL: redis.url,
    SWITCHYARD_PREFIX: 'sk',
    FLAKY_LEDGER: ledgerFile,
    SWITCHYARD_HEARTBEAT_MS: '500',
    SWITCHYARD_AGENT_TTL_MS: '1500',
    // A fire whose API process died is taken over within about a second and a half.
    SWITCHYARD_LOCK_MS: '1000',
  };
  await startAgentProcess('flaky', env, ['--concurrency', '10']);
  apis.push(...(await Promise.all([0, 1, 2].map(() => startApiProcess(env)))));
}, 120_000);

afterAll(async () => {
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scheduledStarts = () => readLedger(ledgerFile).filter((l) => l.ev === 'start' && firedBy(l.id)?.schedule === 'tick');

describe('a schedule while API processes and Redis die', () => {
  it('runs every tick once, missing none but those that fell while Redis was down', async () => {
    const created = await fetch(`${apis[0]!.url}/v1/schedules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'tick', cron: '*/2 * * * * *', task: { type: 'flaky', payload: { latencyMs: 10 } } }),
    });
    expect(created.status).toBe(201);
    await waitFor(() => scheduledStarts().length >= 2, { timeoutMs: 15_000, what: 'the first fires' });

    for (const victim of [0, 1]) {
      await sleep(EVERY_MS * 2.5);
      await apis[victim]!.kill('SIGKILL');
      apis[victim] = await startApiProcess(env);
    }
    await sleep(EVERY_MS * 2.5);
    const down = Date.now();
    redis.process.kill('SIGKILL');
    await waitFor(async () => !(await pingRedis('127.0.0.1', port, 200)), { what: 'Redis to be down' });
    await sleep(1000);
    redis = await spawnRedis({ dataDir: join(dir, 'redis'), port });
    const back = Date.now();
    await sleep(EVERY_MS * 4);
    const live = apis.find((a) => a.proc.exitCode === null)!;
    expect((await fetch(`${live.url}/v1/schedules/tick`, { method: 'DELETE' })).status).toBe(204);
    await sleep(EVERY_MS);

    const ticks = scheduledStarts().map((l) => firedBy(l.id)!.tick);
    const counts = new Map<number, number>();
    for (const t of ticks) counts.set(t, (counts.get(t) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1), 'ticks that ran more than once').toEqual([]);
    const first = Math.min(...ticks);
    const last = Math.max(...ticks);
    const missing: number[] = [];
    for (let t = first; t <= last; t += EVERY_MS) if (!counts.has(t)) missing.push(t);
    // A tick due while Redis was down, or while its fire job could not be read yet, fires once late or not at all.
    expect(missing.filter((t) => t < down - EVERY_MS || t > back + EVERY_MS), 'ticks missed while Redis was up').toEqual([]);
    expect(counts.size).toBeGreaterThanOrEqual(10);
    console.info(`[reliability] schedule every ${EVERY_MS} ms: ${counts.size} ticks ran once each, 2 API processes killed, ${missing.length} ticks fell in the ${back - down} ms Redis outage`);
  }, 120_000);
});
