/**
 * Routing quality, with real agents: (1) the weighted split of 10 000 enqueued tasks over pools
 * weighted 10 : 1; (2) least-loaded against round-robin when one pool is slow (p95 latency from
 * add to completion); (3) a pool whose agent is killed mid-run: how long until no task is routed
 * there, how long until its tasks completed elsewhere, and how many were lost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import demoTypes from '../queues/index.ts';
import { CompletionTracker, openLoop, type Percentiles } from './load.ts';
import { startAgent, stop } from './processes.ts';
import { startProducer, type BenchProducer } from './producer.ts';
import { deletePrefix } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { queueName, type Strategy } from '../src/index.ts';

export interface RoutingOptions {
  redisUrl: string;
  splitTasks: number;
  rate: number;
  seconds: number;
}

export interface RoutingResult {
  split: { tasks: number; heavyShare: number; expected: number; errorPct: number };
  slowPool: Record<'round-robin' | 'least-loaded', { p95: number; latencyMs: Percentiles; toSlow: number; offered: number }>;
  poolLoss: { offered: number; completed: number; lost: number; routedAwayAfterMs: number; recoveredAfterMs: number };
}

const FAST = { SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_STALLED_INTERVAL_MS: '1000', SWITCHYARD_REROUTE_GRACE_MS: '1000' };

async function split(o: RoutingOptions, prefix: string): Promise<RoutingResult['split']> {
  const sys = await startProducer(o.redisUrl, prefix, demoTypes);
  const timing = { heartbeatMs: 600_000, ttlMs: 1_800_000 };
  for (const [pool, weight] of [['heavy', 10], ['light', 1]] as const) {
    await sys.registry.register({ id: `holder-${pool}`, type: 'echo', pool, weight, version: '1.0.0', capabilities: [{ name: 'echo', version: '1.0.0' }], concurrency: 1 }, timing);
    await sys.registry.heartbeat(`holder-${pool}`, { health: 'HEALTHY', running: 0 }, timing);
  }
  await sys.snapshot.refresh();
  let heavy = 0;
  for (let i = 0; i < o.splitTasks; i += 1000) {
    const results = await sys.producer.enqueueBatch(Array.from({ length: Math.min(1000, o.splitTasks - i) }, () => ({ type: 'echo', payload: {}, strategy: 'weighted' })));
    heavy += results.filter((r) => r.task.pool === 'heavy').length;
  }
  await sys.close();
  const share = heavy / o.splitTasks;
  return { tasks: o.splitTasks, heavyShare: share, expected: 10 / 11, errorPct: (share - 10 / 11) * 100 };
}

async function agents(o: RoutingOptions, prefix: string, pools: Array<{ pool: string; slowdownMs?: number }>): Promise<ChildProcess[]> {
  return Promise.all(
    pools.map((p) => startAgent({ redisUrl: o.redisUrl, prefix, type: 'flaky', pool: p.pool, concurrency: 10, env: { ...FAST, ...(p.slowdownMs ? { FLAKY_SLOWDOWN_MS: String(p.slowdownMs) } : {}) } })),
  );
}

async function drain(sys: BenchProducer, prefix: string, pools: string[], total: number): Promise<number> {
  const queues = pools.map((pool) => new Queue(queueName({ type: 'flaky', pool }), { connection: sys.redis, prefix }));
  let completed = 0;
  for (let i = 0; i < 600; i++) {
    const counts = await Promise.all(queues.map((q) => q.getJobCounts('completed')));
    completed = counts.reduce((a, c) => a + (c.completed ?? 0), 0);
    if (completed >= total) break;
    await sleep(100);
  }
  await Promise.all(queues.map((q) => q.close()));
  return completed;
}

async function slowPool(o: RoutingOptions, prefix: string, strategy: Strategy): Promise<RoutingResult['slowPool']['round-robin']> {
  const pools = ['fast', 'slow'];
  const procs = await agents(o, prefix, [{ pool: 'fast' }, { pool: 'slow', slowdownMs: 80 }]);
  const sys = await startProducer(o.redisUrl, prefix, demoTypes, FAST);
  await sys.snapshot.refresh();
  const tracker = new CompletionTracker(o.redisUrl, prefix, pools.map((pool) => queueName({ type: 'flaky', pool })));
  await tracker.ready();
  let toSlow = 0;
  const offered = await openLoop(o.rate, o.seconds, async (n) => {
    const results = await sys.producer.enqueueBatch(Array.from({ length: n }, () => ({ type: 'flaky', payload: { latencyMs: 20 }, strategy })));
    toSlow += results.filter((r) => r.task.pool === 'slow').length;
    return results.map((r) => r.task.id);
  }, tracker.added);
  await drain(sys, prefix, pools, offered);
  const latencyMs = tracker.percentiles();
  await tracker.close();
  await Promise.all(procs.map((p) => stop(p)));
  await sys.close();
  return { p95: latencyMs.p95, latencyMs, toSlow, offered };
}

async function poolLoss(o: RoutingOptions, prefix: string, progress: (m: string) => void): Promise<RoutingResult['poolLoss']> {
  const pools = ['a', 'b', 'c'];
  const procs = await agents(o, prefix, pools.map((pool) => ({ pool })));
  const sys = await startProducer(o.redisUrl, prefix, demoTypes, FAST, true);
  await sys.snapshot.refresh();
  const added = new Map<string, number>();
  let killedAt = 0;
  let lastToC = 0;
  const kill = sleep((o.seconds * 1000) / 3).then(async () => {
    killedAt = Date.now();
    await stop(procs[2]!, 'SIGKILL');
    progress('routing: killed the agent of pool c');
  });
  const offered = await openLoop(o.rate / 2, o.seconds, async (n) => {
    const results = await sys.producer.enqueueBatch(Array.from({ length: n }, () => ({ type: 'flaky', payload: { latencyMs: 50 } })));
    if (results.some((r) => r.task.pool === 'c')) lastToC = Date.now();
    return results.map((r) => r.task.id);
  }, added);
  await kill;
  const completed = await drain(sys, prefix, pools, offered);
  const recoveredAfterMs = Date.now() - killedAt;
  await Promise.all(procs.slice(0, 2).map((p) => stop(p)));
  await sys.close();
  return { offered, completed, lost: offered - completed, routedAwayAfterMs: Math.max(0, lastToC - killedAt), recoveredAfterMs };
}

export async function routingBench(o: RoutingOptions, prefix: string, progress: (m: string) => void): Promise<RoutingResult> {
  const stats = new Redis(o.redisUrl);
  const s = await split(o, `${prefix}-w`);
  progress(`routing: weighted 10:1 over ${s.tasks} tasks, heavy ${(s.heavyShare * 100).toFixed(2)} % (expected 90.91 %)`);
  const rr = await slowPool(o, `${prefix}-rr`, 'round-robin');
  progress(`routing: one slow pool, round-robin p95 ${rr.p95} ms (${rr.toSlow} of ${rr.offered} to the slow pool)`);
  const ll = await slowPool(o, `${prefix}-ll`, 'least-loaded');
  progress(`routing: one slow pool, least-loaded p95 ${ll.p95} ms (${ll.toSlow} of ${ll.offered} to the slow pool)`);
  const loss = await poolLoss(o, `${prefix}-k`, progress);
  progress(`routing: pool killed, last task routed to it ${loss.routedAwayAfterMs} ms after the kill, lost ${loss.lost} of ${loss.offered}`);
  for (const p of ['w', 'rr', 'll', 'k']) await deletePrefix(stats, `${prefix}-${p}`);
  await stats.quit();
  return { split: s, slowPool: { 'round-robin': rr, 'least-loaded': ll }, poolLoss: loss };
}

/** The `routing` scenario of `npm run bench`, measured and described. */
export async function routingScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const o = { redisUrl: opts.redis, splitTasks: 10_000, rate: opts.routeRate, seconds: opts.routeSeconds };
  const r = await routingBench(o, `bench-route-${process.pid}`, progress);
  const rr = r.slowPool['round-robin'];
  const ll = r.slowPool['least-loaded'];
  const text = [
    `Real \`flaky\` agents (concurrency 10 each) and an in-process producer routing every task; latency from add to completion (queue events, HDR histogram). Agents here use a 2 s lock and 1 s stalled check, and the dispatcher a 1 s re-route grace.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| weighted 10 : 1, share of ${fmt(r.split.tasks)} enqueued tasks in the heavy pool | ${fmt(r.split.heavyShare * 100, 2)} % (expected 90.91 %, error ${r.split.errorPct >= 0 ? '+' : ''}${fmt(r.split.errorPct, 2)} points) |`,
    `| one pool 5× slower (20 ms + 80 ms per task), ${fmt(o.rate)} tasks/s for ${o.seconds} s: p95 latency with round-robin | ${fmt(rr.p95)} ms (${fmt(rr.toSlow)} of ${fmt(rr.offered)} tasks sent to the slow pool) |`,
    `| the same with least-loaded | ${fmt(ll.p95)} ms (${fmt(ll.toSlow)} of ${fmt(ll.offered)} sent to the slow pool) |`,
    `| a pool's only agent killed (SIGKILL) mid-run at ${fmt(o.rate / 2)} tasks/s: last task routed to it after the kill | ${fmt(r.poolLoss.routedAwayAfterMs)} ms |`,
    `| … every task offered completed, ${fmt(r.poolLoss.recoveredAfterMs)} ms after the kill; tasks lost | ${fmt(r.poolLoss.lost)} of ${fmt(r.poolLoss.offered)} |`,
    '',
    'A killed agent is noticed when its heartbeats stop (UNKNOWN after two missed beats, 2 s by default): until then its pool still gets tasks. Its waiting tasks move to live pools after the re-route grace; the tasks it was running go back to waiting once their lock expires (the API runs the stalled check for a pool with no live agent), then move too.',
  ].join('\n');
  const summary = [
    summaryRow('routing: weighted 10 : 1 share, heavy pool', '90.91 %', `${fmt(r.split.heavyShare * 100, 2)} %`, `${r.split.errorPct >= 0 ? '+' : ''}${fmt(r.split.errorPct, 2)} pts`, '± 1 pt', Math.abs(r.split.errorPct) <= 1),
    summaryRow('routing: p95 with one slow pool, ms (round-robin → least-loaded)', fmt(rr.p95), fmt(ll.p95), (ll.p95 / rr.p95).toFixed(2), 'least-loaded wins', ll.p95 < rr.p95),
    summaryRow('routing: a pool killed mid-run, tasks lost', '', `${fmt(r.poolLoss.lost)} of ${fmt(r.poolLoss.offered)}`, '', '0', r.poolLoss.lost === 0),
  ];
  return { summary, title: 'Routing quality', command: `npm run bench -- routing --route-rate ${o.rate} --route-seconds ${o.seconds}`, text, data: r };
}
