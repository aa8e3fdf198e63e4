/**
 * Faults 3 and 4 of the reliability suite: the Redis under test is killed with SIGKILL while tasks
 * flow, stays down for a while, and is started again on the same data directory (AOF with
 * `appendfsync always`). The API answers 503 quickly while it is down and never a false 2xx; every
 * agent consumes again within seconds of Redis answering PING, without restarting any process; and
 * every task the API acknowledged completes; the completion rate is back to what it was before the
 * kill within 5 s of Redis answering. CI runs 3 short outages; RELIABILITY_FULL=1 runs 20,
 * some of them 30 s and 120 s long (longer than any blocking timeout).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, pingRedis, spawnRedis } from '../../src/redis/embedded.ts';
import { queueName } from '../../src/model/names.ts';
import { readLedger } from '../support/ledger.ts';
import { percentile } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const FULL = process.env.RELIABILITY_FULL === '1';
const OUTAGES_MS = FULL ? [...Array.from({ length: 18 }, () => 3000), 30_000, 120_000] : [2000, 3000, 5000];

const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-restart-'));
const ledgerFile = join(dir, 'ledger.jsonl');
const redisArgs = ['--appendfsync', 'always'];
let port: number;
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let api: ApiProcess;
let agents: Spawned[];

beforeAll(async () => {
  port = await freePort();
  redis = await spawnRedis({ dataDir: join(dir, 'redis'), port, args: redisArgs });
  const env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'rr', FLAKY_LEDGER: ledgerFile };
  api = await startApiProcess(env);
  agents = [await startAgentProcess('flaky', env, ['--concurrency', '10']), await startAgentProcess('flaky', env, ['--concurrency', '10'])];
}, 60_000);

afterAll(async () => {
  await redis?.stop();
});

describe('Redis killed and restarted under load', () => {
  it(`loses no acknowledged task, and agents consume again within 5 s (${OUTAGES_MS.length} outages)`, async () => {
    const acked: string[] = [];
    const ackTimes: number[] = [];
    let answersWhileDown = 0;
    let slowAnswers = 0;
    let down = false;
    let sending = true;
    const sender = (async () => {
      while (sending) {
        const started = Date.now();
        const wasDown = down;
        const res = await fetch(`${api.url}/v1/tasks/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tasks: Array.from({ length: 10 }, () => ({ type: 'flaky', payload: { latencyMs: 20 } })) }),
        }).catch(() => undefined);
        if (res?.status === 202) {
          acked.push(...((await res.json()) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id));
          ackTimes.push(Date.now());
        }
        else if (res) await res.text();
        if (wasDown && down) {
          answersWhileDown++;
          expect(res?.status, 'no 2xx while Redis is down').not.toBe(202);
          if (Date.now() - started > 1000) slowAnswers++;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const resumes: number[] = [];
    const outages: Array<{ killAt: number; back: number }> = [];
    for (const outage of OUTAGES_MS) {
      await new Promise((r) => setTimeout(r, 3000)); // steady load before the kill: the rate to get back to
      down = true;
      const killAt = Date.now();
      redis.process.kill('SIGKILL');
      await waitFor(async () => !(await pingRedis('127.0.0.1', port, 200)), { what: 'Redis to be down' });
      await new Promise((r) => setTimeout(r, outage));
      redis = await spawnRedis({ dataDir: join(dir, 'redis'), port, args: redisArgs });
      const back = Date.now();
      outages.push({ killAt, back });
      down = false;
      // Each agent starts a task again: its ledger lines say so, by process id.
      for (const agent of agents) {
        const started = await waitFor(() => readLedger(ledgerFile).find((l) => l.pid === agent.proc.pid && l.ev === 'start' && l.t >= back), {
          timeoutMs: 30_000,
          intervalMs: 50,
          what: `agent ${agent.proc.pid} to consume again after Redis returned`,
        });
        resumes.push(started.t - back);
      }
    }
    await new Promise((r) => setTimeout(r, 3000)); // load after the last outage, to see its rate recover
    sending = false;
    await sender;

    // Throughput back: from Redis answering until the API acknowledges again, and until tasks complete
    // (ledger ends over a sliding second) at >= 80 % of the rate the client was acknowledged at in the
    // two seconds before the kill (its offered load: completions alone swing with catch-up bursts).
    const ends = readLedger(ledgerFile).filter((l) => l.ev === 'end').map((l) => l.t);
    const countIn = (from: number, to: number) => ends.filter((t) => t >= from && t < to).length;
    const accepting: number[] = [];
    const fullRate: number[] = [];
    for (const { killAt, back } of outages) {
      accepting.push((ackTimes.find((t) => t >= back) ?? Infinity) - back);
      const before = (ackTimes.filter((t) => t >= killAt - 2000 && t < killAt).length * 10) / 2; // 10 tasks per batch
      let t = back + 1000;
      while (t < back + 30_000 && countIn(t - 1000, t) < 0.8 * before) t += 100;
      fullRate.push(t - back);
    }

    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(queueName({ type: 'flaky', pool: 'default' }), { connection: client, prefix: 'rr' });
    const done = await waitFor(async () => {
      const ids = new Set((await queue.getJobs(['completed'], 0, -1)).map((j) => j?.id));
      return acked.every((id) => ids.has(id)) ? ids : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'every acknowledged task to complete' }).catch(() => undefined);
    const completed = done ? acked.length : (await Promise.all(acked.map((id) => queue.getJobState(id)))).filter((s) => s === 'completed').length;
    await queue.close();
    client.disconnect();

    console.info(
      `[reliability] redis restarts: ${OUTAGES_MS.length} outages (${OUTAGES_MS.map((o) => o / 1000).join(', ')} s), ${acked.length} acknowledged, ` +
        `lost ${acked.length - completed}, answers while down ${answersWhileDown} (${slowAnswers} slower than 1 s), ` +
        `agents consuming again after Redis returned: p50 ${percentile(resumes, 50)} ms, max ${Math.max(...resumes)} ms; ` +
        `API accepting again p50 ${percentile(accepting, 50)} ms, max ${Math.max(...accepting)} ms; ` +
        `completions back to >= 80 % of the acknowledged rate before (1 s window) p50 ${percentile(fullRate, 50)} ms, max ${Math.max(...fullRate)} ms (per outage: ${fullRate.join(", ")} ms)`,
    );
    expect(acked.length - completed).toBe(0);
    expect(slowAnswers).toBe(0);
    expect(Math.max(...resumes)).toBeLessThanOrEqual(5000);
    expect(Math.max(...fullRate)).toBeLessThanOrEqual(5000);
    expect(agents.every((a) => a.proc.exitCode === null)).toBe(true);
  }, FULL ? 900_000 : 120_000);
});
