/**
 * The seed's shape, scaled up: 120 agent slots in several processes, tasks with 10–50 ms of work
 * that fail 10 % of the time and are retried with exponential backoff, offered open loop at a fixed
 * rate. The reference is bare BullMQ with the same slots (one queue, the same number of worker
 * processes and concurrency) and the same retry policy; Switchyard spreads the slots over pools and
 * routes every task. Then each side is offered twice what its slots can do, to find where it
 * saturates.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import demoTypes from '../queues/index.ts';
import { queueName } from '../src/redis/keys.ts';
import { CompletionTracker, openLoop, type AddBatch, type Percentiles } from './load.ts';
import { startAgent, startBareWorker, stop } from './processes.ts';
import { startProducer } from './producer.ts';
import { deletePrefix } from './redis-stats.ts';

export interface SeedOptions {
  redisUrl: string;
  rate: number;
  seconds: number;
  /** Worker processes per side, and the concurrency of each (slots = processes × concurrency). */
  processes: number;
  concurrency: number;
  pools: number;
  failRate: number;
  attempts: number;
  /** Seconds of overload (2 × slot capacity) to measure saturation; 0 skips it. */
  saturationSeconds: number;
}

export interface SeedSide {
  offered: number;
  completed: number;
  dead: number;
  /** Completions within the load window, per minute. */
  completedPerMin: number;
  latencyMs: Percentiles;
  eventualSuccess: number;
  /** From the end of the load until every task completed or died. */
  drainMs: number;
  saturation?: { offeredPerSec: number; completedPerSec: number };
  deadReasons: string[];
}

export interface SeedResult {
  slots: number;
  workMs: [number, number];
  bare: SeedSide;
  switchyard: SeedSide;
}

const WORK = { latencyMs: 30, jitterMs: 20 };
const BACKOFF = { type: 'exponential' as const, delay: 200, jitter: 0.2 };

interface Side {
  queues: string[];
  add: AddBatch;
  counts(): Promise<{ completed: number; dead: number }>;
  /** Why the first few dead tasks died. */
  deadReasons(): Promise<string[]>;
  close(): Promise<void>;
}

async function run(o: SeedOptions, prefix: string, side: Side, progress: (m: string) => void, label: string): Promise<SeedSide> {
  const tracker = new CompletionTracker(o.redisUrl, prefix, side.queues);
  await tracker.ready();
  tracker.window(o.seconds * 1000);
  const offered = await openLoop(o.rate, o.seconds, side.add, tracker.added);
  const inWindow = tracker.windowCount;
  const loadEnd = Date.now();
  let counts = await side.counts();
  for (let i = 0; counts.completed + counts.dead < offered && i < 1200; i++) {
    await sleep(100);
    counts = await side.counts();
  }
  const drainMs = Date.now() - loadEnd;
  const latencyMs = tracker.percentiles();
  progress(`seed ${label}: offered ${offered} at ${o.rate}/s, ${inWindow} completed in the window, p95 ${latencyMs.p95} ms, drained in ${drainMs} ms, dead ${counts.dead}`);
  const result: SeedSide = {
    offered,
    completed: counts.completed,
    dead: counts.dead,
    completedPerMin: (inWindow / o.seconds) * 60,
    latencyMs,
    eventualSuccess: counts.completed / offered,
    drainMs,
    deadReasons: [],
  };
  if (o.saturationSeconds > 0) {
    const capacity = (o.processes * o.concurrency * 1000) / WORK.latencyMs;
    tracker.window(o.saturationSeconds * 1000);
    const more = await openLoop(2 * capacity, o.saturationSeconds, side.add, tracker.added);
    const done = tracker.windowCount;
    result.saturation = { offeredPerSec: more / o.saturationSeconds, completedPerSec: done / o.saturationSeconds };
    progress(`seed ${label}: offered ${Math.round(more / o.saturationSeconds)}/s (2x the slots), completed ${Math.round(done / o.saturationSeconds)}/s`);
    const target = offered + more;
    for (let i = 0; i < 1200; i++) {
      counts = await side.counts();
      if (counts.completed + counts.dead >= target) break;
      await sleep(100);
    }
  }
  result.deadReasons = await side.deadReasons();
  await tracker.close();
  return result;
}

async function bareSide(o: SeedOptions, prefix: string): Promise<Side & { workers: ChildProcess[] }> {
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('bare', { connection, prefix });
  const workers = await Promise.all(Array.from({ length: o.processes }, () => startBareWorker({ redisUrl: o.redisUrl, prefix, queue: 'bare', concurrency: o.concurrency })));
  return {
    workers,
    queues: ['bare'],
    add: async (n) => {
      const jobs = await queue.addBulk(Array.from({ length: n }, () => ({ name: 'work', data: { ...WORK, failRate: o.failRate }, opts: { attempts: o.attempts, backoff: BACKOFF, removeOnComplete: { age: 3600, count: 1_000_000 } } })));
      return jobs.map((j) => j.id!);
    },
    counts: async () => {
      const c = await queue.getJobCounts('completed', 'failed');
      return { completed: c.completed ?? 0, dead: c.failed ?? 0 };
    },
    deadReasons: async () => (await queue.getJobs(['failed'], 0, 4)).map((j) => `${j.failedReason} (attempts ${j.attemptsMade})`),
    close: async () => {
      await Promise.all(workers.map((w) => stop(w)));
      await queue.close();
      connection.disconnect();
    },
  };
}

async function switchyardSide(o: SeedOptions, prefix: string): Promise<Side> {
  const sys = await startProducer(o.redisUrl, prefix, demoTypes, { SWITCHYARD_KEEP_COMPLETED_COUNT: '1000000' });
  const pools = Array.from({ length: o.pools }, (_, i) => (i === 0 ? 'default' : `pool-${i + 1}`));
  const agents = await Promise.all(
    Array.from({ length: o.processes }, (_, i) => startAgent({ redisUrl: o.redisUrl, prefix, type: 'flaky', pool: pools[i % pools.length]!, concurrency: o.concurrency, env: { SWITCHYARD_KEEP_COMPLETED_COUNT: '1000000', FLAKY_BREAKER_PRESET: 'batch' } })),
  );
  await sys.snapshot.refresh();
  const queues = pools.map((pool) => new Queue(queueName({ type: 'flaky', pool }), { connection: sys.redis, prefix }));
  const task = { type: 'flaky', payload: { ...WORK, failRate: o.failRate }, attempts: o.attempts, backoff: { type: BACKOFF.type, delayMs: BACKOFF.delay, jitter: BACKOFF.jitter } };
  return {
    queues: pools.map((pool) => queueName({ type: 'flaky', pool })),
    add: async (n) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i += 1000) {
        const results = await sys.producer.enqueueBatch(Array.from({ length: Math.min(1000, n - i) }, () => task));
        for (const r of results) ids.push(r.task.id);
      }
      return ids;
    },
    counts: async () => {
      const all = await Promise.all(queues.map((q) => q.getJobCounts('completed', 'failed')));
      return { completed: all.reduce((a, c) => a + (c.completed ?? 0), 0), dead: all.reduce((a, c) => a + (c.failed ?? 0), 0) };
    },
    deadReasons: async () => (await Promise.all(queues.map((q) => q.getJobs(['failed'], 0, 4)))).flat().slice(0, 5).map((j) => `${j.failedReason} (attempts ${j.attemptsMade})`),
    close: async () => {
      await Promise.all(agents.map((a) => stop(a)));
      await Promise.all(queues.map((q) => q.close()));
      await sys.close();
    },
  };
}

export async function seedBench(o: SeedOptions, prefix: string, progress: (m: string) => void): Promise<SeedResult> {
  const stats = new Redis(o.redisUrl);
  const bare = await bareSide(o, `${prefix}-b`);
  progress(`seed: bare BullMQ, ${o.processes} worker processes × ${o.concurrency}`);
  const bareResult = await run(o, `${prefix}-b`, bare, progress, 'bare BullMQ');
  await bare.close();
  await deletePrefix(stats, `${prefix}-b`);
  const sy = await switchyardSide(o, `${prefix}-s`);
  progress(`seed: Switchyard, ${o.processes} agent processes × ${o.concurrency} in ${o.pools} pools`);
  const syResult = await run(o, `${prefix}-s`, sy, progress, 'Switchyard');
  await sy.close();
  await deletePrefix(stats, `${prefix}-s`);
  await stats.quit();
  return { slots: o.processes * o.concurrency, workMs: [WORK.latencyMs - WORK.jitterMs, WORK.latencyMs + WORK.jitterMs], bare: bareResult, switchyard: syResult };
}
