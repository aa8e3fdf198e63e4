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
import { CompletionTracker, openLoop, type AddBatch, type Percentiles } from './load.ts';
import { startAgent, startBareWorker, stop } from './processes.ts';
import { startProducer } from './producer.ts';
import { deletePrefix } from './redis-stats.ts';
import { fmt, pct, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { queueName } from '../src/index.ts';

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

/** The `seed` scenario of `npm run bench`, measured and described. */
export async function seedScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const o = { redisUrl: opts.redis, rate: opts.rate, seconds: opts.duration, processes: 4, concurrency: 30, pools: 2, failRate: 0.1, attempts: 5, saturationSeconds: opts.saturation };
  const r = await seedBench(o, `bench-seed-${process.pid}`, progress);
  const row = (label: string, b: number, s: number, digits = 0, unit = '') => `| ${label} | ${fmt(b, digits)}${unit} | ${fmt(s, digits)}${unit} | ${(s / b).toFixed(2)} |`;
  const text = [
    `${r.slots} slots (${o.processes} processes × ${o.concurrency}; Switchyard's in ${o.pools} pools), tasks of ${r.workMs[0]}–${r.workMs[1]} ms that fail ${o.failRate * 100} % of the time, up to ${o.attempts} attempts with exponential backoff (200 ms, ±20 % jitter), offered open loop at ${fmt(o.rate)} tasks/s for ${o.seconds} s. Bare BullMQ: one queue, workers doing the same sleep-and-fail. Switchyard: \`flaky\` agents, every task routed (weighted) by an in-process producer; their pool breakers use the \`batch\` preset (trip at 70 % failures over at least 10 calls), since failing 10 % of the time at random is this workload's normal. Latency from add to completion (queue events), HDR histogram.`,
    '',
    '| figure | bare BullMQ | Switchyard | Switchyard / bare |',
    '|---|---:|---:|---:|',
    row('completed tasks/min during the load', r.bare.completedPerMin, r.switchyard.completedPerMin),
    row('latency p50, ms', r.bare.latencyMs.p50, r.switchyard.latencyMs.p50),
    row('latency p95, ms', r.bare.latencyMs.p95, r.switchyard.latencyMs.p95),
    row('latency p99, ms', r.bare.latencyMs.p99, r.switchyard.latencyMs.p99),
    row('latency max, ms', r.bare.latencyMs.max, r.switchyard.latencyMs.max),
    `| eventual success (completed / offered) | ${pct(r.bare.eventualSuccess)} | ${pct(r.switchyard.eventualSuccess)} | |`,
    `| dead (out of attempts) | ${r.bare.dead} | ${r.switchyard.dead} | |`,
    ...(r.bare.saturation && r.switchyard.saturation
      ? [row(`saturation: tasks/s completed when offered ${fmt(r.bare.saturation.offeredPerSec)}/s (2 × the slots)`, r.bare.saturation.completedPerSec, r.switchyard.saturation.completedPerSec)]
      : []),
    ...(r.bare.deadReasons.length || r.switchyard.deadReasons.length
      ? ['', `Why dead tasks died (the first few): bare ${JSON.stringify(r.bare.deadReasons)}; Switchyard ${JSON.stringify(r.switchyard.deadReasons)}. With ${o.attempts} attempts at ${o.failRate * 100} % failure, about ${fmt(Math.pow(o.failRate, o.attempts) * 1e6, 0)} in a million tasks fail every attempt.`]
      : []),
    '',
    'Against the figures the seed claims for the same shape (120 agents, 10 % simulated failures):',
    '',
    '| figure | seed claims | Switchyard here |',
    '|---|---:|---:|',
    `| completed tasks per minute | 1 200+ | ${fmt(r.switchyard.completedPerMin)} (${fmt(r.switchyard.completedPerMin / 1200)}×) |`,
    `| average latency | < 100 ms | ${fmt(r.switchyard.latencyMs.mean)} ms (add to completion, retries included) |`,
    `| success with 10 % failures | 98 % | ${pct(r.switchyard.eventualSuccess)} |`,
  ].join('\n');
  const b = r.bare;
  const y = r.switchyard;
  const summary = [
    summaryRow('seed shape: completed tasks/min', fmt(b.completedPerMin), fmt(y.completedPerMin), (y.completedPerMin / b.completedPerMin).toFixed(2), '≥ 0.95', y.completedPerMin / b.completedPerMin >= 0.95),
    summaryRow('seed shape: p95 latency, add → done, ms', fmt(b.latencyMs.p95), fmt(y.latencyMs.p95), (y.latencyMs.p95 / b.latencyMs.p95).toFixed(2), '≤ 1.2', y.latencyMs.p95 / b.latencyMs.p95 <= 1.2),
    summaryRow('seed shape: eventual success', pct(b.eventualSuccess), pct(y.eventualSuccess), '', '≥ 99.9 %', y.eventualSuccess >= 0.999),
    ...(b.saturation && y.saturation ? [summaryRow('seed shape: saturation, tasks/s completed under 2× overload', fmt(b.saturation.completedPerSec), fmt(y.saturation.completedPerSec), (y.saturation.completedPerSec / b.saturation.completedPerSec).toFixed(2))] : []),
  ];
  return { summary, title: 'Seed shape: 120 slots, 10 % failures, open loop', command: `npm run bench -- seed --rate ${o.rate} --duration ${o.seconds} --saturation ${o.saturationSeconds}`, text, data: r };
}
