/**
 * The flow bench's keyed runs, on a private redis-server, with agent processes of bench/keyed-agent.ts
 * (their handlers keep their own ledger in Redis):
 * - fairness: key `a` enqueues `fairA` short tasks, then key `b` enqueues `fairB`; four agents. The
 *   same run without keys (FIFO) beside it: b's time to completion (p95, from b's enqueue) and the
 *   total throughput of each;
 * - the limit per key: `limitTasks` tasks over `limitKeys` keys (skewed) with concurrencyLimit 3, four agents at
 *   concurrency 20, one SIGKILLed mid-run: the most tasks of one key the handlers saw running at once,
 *   and whether every task completed.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { buildApiServices, Catalogue, connectApi, createLogger, loadConfig, queueName, stopApiServices, type ApiServices } from '../src/index.ts';
import { keyedType } from './keyed-type.ts';
import { startAgent, stop } from './processes.ts';
import { fmt, type Progress } from './report.ts';
import type { PrivateRedis } from './private-redis.ts';

const SCRIPT = fileURLToPath(new URL('./keyed-agent.ts', import.meta.url));
const silent = createLogger({ logLevel: 'silent', logPretty: false });

export interface FairnessRun {
  a: number;
  b: number;
  agents: number;
  fifo: { bP95Ms: number; tasksPerS: number };
  fair: { bP95Ms: number; tasksPerS: number };
}

export interface KeyLimitRun {
  tasks: number;
  keys: number;
  limit: number;
  /** Each task's work. */
  ms: number;
  agents: number;
  concurrency: number;
  mostSeen: number;
  /** Tasks BullMQ holds as completed at the end. */
  completed: number;
  killedAfterMs: number;
  seconds: number;
}

interface Setup {
  services: ApiServices;
  ledger: Redis;
  agents: ChildProcess[];
}

async function setUp(server: PrivateRedis, prefix: string, agents: number, concurrency: number, env: Record<string, string> = {}): Promise<Setup> {
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  const services = await buildApiServices(connectApi(server.url, silent), config, new Catalogue([keyedType]), silent);
  const procs = await Promise.all(Array.from({ length: agents }, () => startAgent({ redisUrl: server.url, prefix, type: 'keyed', concurrency, script: SCRIPT, env })));
  // Routed once the API's fleet snapshot has the pool's agents (before, a task would be parked).
  for (let i = 0; i < 100 && services.router.route({ type: 'keyed' }).pool !== 'default'; i++) await sleep(100);
  return { services, ledger: new Redis(server.url), agents: procs };
}

async function tearDown(s: Setup): Promise<void> {
  await Promise.all(s.agents.map((a) => stop(a)));
  await stopApiServices(s.services);
  await s.ledger.flushall(); // a private server
  s.ledger.disconnect();
}

async function enqueue(s: Setup, tasks: Array<{ key: string; ms: number; keyed: boolean; limit?: number }>): Promise<void> {
  for (let i = 0; i < tasks.length; i += 1000) {
    await s.services.producer.enqueueBatch(tasks.slice(i, i + 1000).map((t) => ({
      type: 'keyed',
      payload: { key: t.key, ms: t.ms },
      ...(t.keyed ? { concurrencyKey: t.key } : {}),
      ...(t.limit ? { concurrencyLimit: t.limit } : {}),
    })));
  }
}

async function doneCount(ledger: Redis, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = Number(await ledger.get('bench:done'));
    if (done >= n || Date.now() > deadline) return done;
    await sleep(20);
  }
}

/** One fairness pass: a's backlog, then b's tasks; b's p95 from its enqueue, and the throughput of the whole. */
async function fairnessPass(server: PrivateRedis, keyed: boolean, a: number, b: number): Promise<{ bP95Ms: number; tasksPerS: number }> {
  const s = await setUp(server, keyed ? 'fair' : 'fifo', 4, 20);
  try {
    const t0 = Date.now();
    await enqueue(s, Array.from({ length: a }, () => ({ key: 'a', ms: 0, keyed })));
    const tb = Date.now();
    await enqueue(s, Array.from({ length: b }, () => ({ key: 'b', ms: 0, keyed })));
    const done = await doneCount(s.ledger, a + b, 300_000);
    const elapsed = Date.now() - t0;
    const bDone = (await s.ledger.lrange('bench:b', 0, -1)).map((t) => Number(t) - tb).sort((x, y) => x - y);
    if (done < a + b || bDone.length < b) throw new Error(`fairness pass: ${done} of ${a + b} done, ${bDone.length} of b's`);
    return { bP95Ms: bDone[Math.ceil(0.95 * bDone.length) - 1]!, tasksPerS: ((a + b) * 1000) / elapsed };
  } finally {
    await tearDown(s);
  }
}

export async function fairnessRun(server: PrivateRedis, a: number, b: number, progress: Progress): Promise<FairnessRun> {
  const fifo = await fairnessPass(server, false, a, b);
  progress(`flow: without keys (FIFO): b's p95 ${fmt(fifo.bP95Ms)} ms, ${fmt(fifo.tasksPerS)} tasks/s`);
  const fair = await fairnessPass(server, true, a, b);
  progress(`flow: with keys: b's p95 ${fmt(fair.bP95Ms)} ms, ${fmt(fair.tasksPerS)} tasks/s`);
  return { a, b, agents: 4, fifo, fair };
}

/**
 * `tasks` keys over `keys` keys, key i taking a share of 1 / (i + 1) (Zipf): a few keys hold most of
 * the work, so their limit binds (spread evenly, 50 keys share 80 agent slots 1.6 each, and a limit of 3
 * would seldom be reached). In round-robin order over the keys that still have tasks.
 */
function skewedKeys(tasks: number, keys: number): string[] {
  const weights = Array.from({ length: keys }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const left = weights.map((w) => Math.max(1, Math.round((tasks * w) / total)));
  const out: string[] = [];
  while (out.length < tasks) {
    for (let i = 0; i < keys && out.length < tasks; i++) {
      if (left[i]! > 0 || left.every((n) => n <= 0)) {
        left[i]!--;
        out.push(`k${i}`);
      }
    }
  }
  return out;
}

export async function keyLimitRun(server: PrivateRedis, o: { tasks: number; keys: number; limit: number; ms: number }, progress: Progress): Promise<KeyLimitRun> {
  // A short lock: the killed agent's tasks and slots come back within seconds.
  const s = await setUp(server, 'limit', 4, 20, { BENCH_COUNT: '1', SWITCHYARD_LOCK_MS: '5000', SWITCHYARD_STALLED_INTERVAL_MS: '2000' });
  try {
    const t0 = Date.now();
    await enqueue(s, skewedKeys(o.tasks, o.keys).map((key) => ({ key, ms: o.ms, keyed: true, limit: o.limit })));
    // SIGKILL one agent once a fifth of the tasks are done; its running tasks leave entries no handler
    // will remove: take them out of the handlers' sets, as its handlers would have on the way out.
    await doneCount(s.ledger, o.tasks / 5, 120_000);
    const victim = s.agents[0]!;
    victim.kill('SIGKILL');
    await new Promise((r) => victim.once('exit', r));
    const killedAfterMs = Date.now() - t0;
    for (const key of await s.ledger.keys('bench:running:*')) {
      for (const m of await s.ledger.smembers(key)) if (m.startsWith(`${victim.pid}:`)) await s.ledger.srem(key, m);
    }
    progress(`flow: limit per key: an agent SIGKILLed after ${fmt(killedAfterMs)} ms`);
    await doneCount(s.ledger, o.tasks, 300_000);
    // Switchyard's own record, every task completed once (a handler may have run twice: at least once).
    const queue = new Queue(queueName({ type: 'keyed', pool: 'default' }), { connection: s.ledger, prefix: 'limit' });
    let completed = 0;
    for (let i = 0; i < 600 && completed < o.tasks; i++, await sleep(100)) completed = (await queue.getJobCounts('completed')).completed ?? 0;
    await queue.close();
    return { ...o, agents: 4, concurrency: 20, mostSeen: Number(await s.ledger.get('bench:most')), completed, killedAfterMs, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await tearDown(s);
  }
}
