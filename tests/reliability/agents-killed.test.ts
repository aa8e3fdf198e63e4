/**
 * Fault 1 and 2 of the reliability suite: agents killed with SIGKILL at random while tasks flow
 * through two pools, each restarted. Against a Redis this test starts itself, with every execution
 * written to a ledger file outside Redis. Reconciled: nothing acknowledged is lost, no result is
 * committed twice, re-executions stay within what was in flight at each kill, and a killed agent's
 * tasks run again within seconds. CI runs a reduced form; RELIABILITY_FULL=1 runs the issue's
 * figures (10 000 tasks, 50 kills).
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
import { startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const FULL = process.env.RELIABILITY_FULL === '1';
const TASKS = FULL ? 10_000 : 1_500;
const KILLS = FULL ? 50 : 5;
const POOLS = ['p1', 'p2'];

const dir = mkdtempSync(join(tmpdir(), 'switchyard-agents-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let client: Redis;
let api: ApiProcess;
let env: Record<string, string>;
const agents: Array<{ pool: string; proc: Spawned }> = [];
const events: QueueEvents[] = [];
const commits = new Map<string, number>();

const startAgent = (pool: string) => startAgentProcess('flaky', env, ['--pool', pool, '--concurrency', '10']);

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
  env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'rel', FLAKY_LEDGER: ledgerFile, SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500' };
  api = await startApiProcess(env);
  for (const pool of POOLS) for (let i = 0; i < 2; i++) agents.push({ pool, proc: await startAgent(pool) });
  for (const pool of POOLS) {
    const e = new QueueEvents(queueName({ type: 'flaky', pool }), { connection: new Redis(redis.url, { maxRetriesPerRequest: null }), prefix: 'rel' });
    e.on('completed', ({ jobId }) => commits.set(jobId, (commits.get(jobId) ?? 0) + 1));
    await e.waitUntilReady();
    events.push(e);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(events.map((e) => e.close()));
  client?.disconnect();
  await redis?.stop();
});

describe('agents killed with SIGKILL while tasks flow', () => {
  it(`loses nothing, commits once, and recovers orphans within seconds (${KILLS} kills, ${TASKS} tasks)`, async () => {
    const acked: string[] = [];
    let sending = true;
    const sender = (async () => {
      const perBatch = 50;
      while (acked.length < TASKS) {
        const n = Math.min(perBatch, TASKS - acked.length);
        const res = await fetch(`${api.url}/v1/tasks/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tasks: Array.from({ length: n }, () => ({ type: 'flaky', payload: { latencyMs: 300, jitterMs: 200 } })) }),
        });
        if (res.status === 202) acked.push(...((await json(res)) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id));
        // Spread the tasks over the kill cycles: about 3.5 s each.
        await new Promise((r) => setTimeout(r, Math.max(20, (KILLS * 3500) / (TASKS / perBatch))));
      }
      sending = false;
    })();

    const kills: Array<{ pid: number; t: number }> = [];
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 2000 + Math.random() * 3000));
      const i = Math.floor(Math.random() * agents.length);
      const victim = agents[i]!;
      const pid = victim.proc.proc.pid!;
      kills.push({ pid, t: Date.now() });
      await victim.proc.kill('SIGKILL');
      agents[i] = { pool: victim.pool, proc: await startAgent(victim.pool) };
    }
    await sender;
    expect(sending).toBe(false);

    // Every acknowledged task ends completed (none fail here: failRate 0).
    const queues = POOLS.map((pool) => new Queue(queueName({ type: 'flaky', pool }), { connection: client, prefix: 'rel' }));
    const done = await waitFor(async () => {
      const ids = new Set<string>();
      for (const q of queues) for (const j of await q.getJobs(['completed', 'failed'], 0, -1)) if (j?.id) ids.add(j.id);
      return acked.every((id) => ids.has(id)) ? ids : undefined;
    }, { timeoutMs: 90_000, intervalMs: 500, what: 'every acknowledged task to finish' });
    await Promise.all(queues.map((q) => q.close()));

    const ledger = readLedger(ledgerFile);
    const starts = startsById(ledger);
    const lost = acked.filter((id) => !done.has(id));
    const doubleCommits = [...commits].filter(([, n]) => n > 1).map(([id]) => id);
    const duplicates = [...starts].filter(([, s]) => s.length > 1).map(([id]) => id);
    // Per kill: what the victim was running, and how long until each of those ran again elsewhere.
    const orphans = new Set<string>();
    const recoveries: number[] = [];
    let orphaned = 0; // (kill, task) pairs: a task can be on two killed agents in turn
    for (const { pid, t } of kills) {
      for (const id of inFlight(ledger, pid, t)) {
        orphans.add(id);
        orphaned++;
        const again = (starts.get(id) ?? []).find((s) => s.t > t && s.pid !== pid);
        if (again) recoveries.push(again.t - t);
      }
    }
    // A task may also run again when its agent died after the handler ended but before BullMQ
    // recorded the result: it was still on the killed agent at the kill.
    const onKilledAgent = (id: string) => kills.some(({ pid, t }) => (starts.get(id) ?? []).some((s) => s.pid === pid && s.t <= t));
    console.info(
      `[reliability] agents killed: ${kills.length} kills, ${acked.length} acknowledged, lost ${lost.length}, ` +
        `double commits ${doubleCommits.length}, re-executed ${duplicates.length} (in flight at the kills: ${orphans.size}), ` +
        `orphan recovery p50 ${percentile(recoveries, 50)} ms, p99 ${percentile(recoveries, 99)} ms, max ${Math.max(...recoveries)} ms`,
    );
    expect(lost).toEqual([]);
    expect(doubleCommits).toEqual([]);
    // Only tasks that were running on a killed agent ran twice.
    for (const id of duplicates) expect(onKilledAgent(id), `${id} ran twice without being on a killed agent`).toBe(true);
    expect(recoveries.length).toBe(orphaned);
    // The target is p50 ≤ 5 s (met by the full run, see docs/reliability.md); the CI form shares two
    // cores with the other test files, so its bound leaves room for that.
    expect(percentile(recoveries, 50)).toBeLessThanOrEqual(FULL ? 5000 : 6500);
    expect(percentile(recoveries, 99)).toBeLessThanOrEqual(10_000);
  }, FULL ? 1_800_000 : 180_000);
});
