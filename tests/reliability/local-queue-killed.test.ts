/**
 * An agent killed with SIGKILL while 500 tasks wait in its local queue (fetched in batches, locked,
 * not started: src/agent/batched-worker.ts). Its locks lapse and the stalled check puts them all
 * back: another agent runs every one, each task it had not started runs exactly once, nothing
 * acknowledged is lost, no result is committed twice, and they run again within the recovery
 * bounds of a killed agent's running tasks (its lock, SWITCHYARD_LOCK_MS, plus two stalled checks).
 * The stall its death counts is charged only to what it had started: a task it held keeps its
 * stalled count and started attempts as if it had never been fetched there.
 * Against a Redis this test starts itself; executions go to a ledger file outside Redis.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRedis } from '../../src/redis/embedded.ts';
import { queueName } from '../../src/model/names.ts';
import { json } from '../support/http.ts';
import { inFlight, percentile, readLedger, startsById } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const TASKS = 700;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-local-queue-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let client: Redis;
let api: ApiProcess;
let env: Record<string, string>;
let events: QueueEvents;
const commits = new Map<string, number>();

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
  env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'lq', FLAKY_LEDGER: ledgerFile, SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500' };
  api = await startApiProcess(env);
  events = new QueueEvents(queueName({ type: 'flaky', pool: 'default' }), { connection: new Redis(redis.url, { maxRetriesPerRequest: null }), prefix: 'lq' });
  events.on('completed', ({ jobId }) => commits.set(jobId, (commits.get(jobId) ?? 0) + 1));
  await events.waitUntilReady();
}, 120_000);

afterAll(async () => {
  await events?.close();
  client?.disconnect();
  await redis?.stop();
});

describe('an agent killed with 500 tasks in its local queue', () => {
  it('has every one of them run again elsewhere, once, within the recovery bounds', async () => {
    const victim = await startAgentProcess('flaky', { ...env, SWITCHYARD_PREFETCH: '500' }, ['--concurrency', '10']);
    const acked: string[] = [];
    for (let sent = 0; sent < TASKS; sent += 100) {
      const res = await fetch(`${api.url}/v1/tasks/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tasks: Array.from({ length: 100 }, () => ({ type: 'flaky', payload: { latencyMs: 400, jitterMs: 100 } })) }),
      });
      expect(res.status).toBe(202);
      acked.push(...((await json(res)) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id));
    }
    const queue = new Queue(queueName({ type: 'flaky', pool: 'default' }), { connection: client, prefix: 'lq' });
    // Active: the 10 it runs and what it holds fetched ahead of them.
    await waitFor(async () => (await queue.getActiveCount()) >= 500, { what: 'the agent to hold 500 tasks', timeoutMs: 30_000 });
    const t = Date.now();
    const pid = victim.proc.pid!;
    await victim.kill('SIGKILL');
    await startAgentProcess('flaky', env, ['--concurrency', '200']);

    const done = await waitFor(async () => {
      const ids = new Set((await queue.getJobs(['completed', 'failed'], 0, -1)).flatMap((j) => (j?.id ? [j.id] : [])));
      return acked.every((id) => ids.has(id)) ? ids : undefined;
    }, { timeoutMs: 90_000, intervalMs: 500, what: 'every acknowledged task to finish' });

    const ledger = readLedger(ledgerFile);
    const starts = startsById(ledger);
    const running = new Set(inFlight(ledger, pid, t));
    const startedByVictim = new Set(ledger.filter((l) => l.pid === pid && l.ev === 'start').map((l) => l.id));
    // Held, not started, when it died: every acknowledged task it had not started and that had not run before the kill.
    const held = acked.filter((id) => !startedByVictim.has(id) && (starts.get(id) ?? []).every((s) => s.t > t));
    const recoveries = held.map((id) => starts.get(id)![0]!.t - t);
    console.info(
      `[reliability] local queue killed: ${acked.length} acknowledged, ${running.size} running and ${held.length} not started on the killed agent; ` +
        `restart after the kill p50 ${percentile(recoveries, 50)} ms, max ${Math.max(...recoveries)} ms`,
    );
    expect(acked.filter((id) => !done.has(id))).toEqual([]);
    expect([...commits].filter(([, n]) => n > 1)).toEqual([]);
    expect(held.length).toBeGreaterThanOrEqual(450);
    // Each task the victim had not started ran once, elsewhere.
    for (const id of held) expect(starts.get(id)!.map((s) => s.pid === pid), id).toEqual([false]);
    // Only what it was running ran twice.
    for (const [id, s] of starts) if (s.length > 1) expect(running.has(id) || startedByVictim.has(id), `${id} ran twice`).toBe(true);
    // Only what it was running is charged the stall: the tasks it held count one started attempt, no stall.
    const heldJobs = await Promise.all(held.map((id) => queue.getJob(id)));
    const charged = heldJobs.filter((j) => j!.stalledCounter !== 0 || j!.attemptsStarted !== 1).map((j) => `${j!.id}: stc ${j!.stalledCounter}, ats ${j!.attemptsStarted}`);
    expect(charged).toEqual([]);
    const runningJobs = await Promise.all([...running].map((id) => queue.getJob(id)));
    expect(runningJobs.map((j) => j!.stalledCounter)).toEqual([...running].map(() => 1));
    await queue.close();
    // Its lock (4 s) and two stalled checks (0.5 s each), then 200 at a time through 400-500 ms tasks.
    expect(percentile(recoveries, 50)).toBeLessThanOrEqual(6500);
    expect(Math.max(...recoveries)).toBeLessThanOrEqual(12_000);
  }, 180_000);
});
