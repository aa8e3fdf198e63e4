/**
 * Throughput of no-op tasks: bare BullMQ (Queue.addBulk + Worker) against Switchyard (TaskProducer
 * routing each task through the live fleet snapshot, + Agent with validation, timeouts, health,
 * heartbeats and breaker reporting), in one run, on the same Redis, in this one process.
 * Three figures per side: enqueue alone, processing a ready backlog, and end to end (producer and
 * worker running together, from the first add to the last completion).
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { Agent, defineAgentType, defineWorker } from '../src/index.ts';
import { silent, startProducer } from './producer.ts';
import { deletePrefix, totalCommands } from './redis-stats.ts';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { httpBench } from './http.ts';

export interface ThroughputOptions {
  redisUrl: string;
  jobs: number;
  concurrency: number;
  chunk: number;
}

export interface PhaseResult {
  enqueuePerSec: number;
  processPerSec: number;
  endToEndPerSec: number;
  commandsPerTask: number;
  /** Redis commands per task of the enqueue phase alone. */
  enqueueCommandsPerTask: number;
}

const noop = defineAgentType({ name: 'noop', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({ i: z.number() }) });

async function untilCount(get: () => number, n: number): Promise<void> {
  while (get() < n) await new Promise((r) => setTimeout(r, 2));
}

/** Adds `jobs` tasks in chunks through `add`; returns ms taken. */
async function feed(o: ThroughputOptions, add: (from: number, n: number) => Promise<unknown>): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < o.jobs; i += o.chunk) await add(i, Math.min(o.chunk, o.jobs - i));
  return performance.now() - t;
}

/**
 * The three phases, the same for both sides: enqueue into an idle queue, start the worker and time
 * the drain, then feed again with the worker running (end to end).
 */
async function phases(
  o: ThroughputOptions,
  stats: Redis,
  add: (from: number, n: number) => Promise<unknown>,
  startWorker: (onCompleted: () => void) => Promise<() => Promise<void>>,
): Promise<PhaseResult> {
  const c0 = await totalCommands(stats);
  const enqueueMs = await feed(o, add);
  const cEnqueued = await totalCommands(stats);
  let done = 0;
  let t = performance.now();
  const stop = await startWorker(() => done++);
  await untilCount(() => done, o.jobs);
  const processMs = performance.now() - t;
  const c1 = await totalCommands(stats);
  t = performance.now();
  await feed(o, add);
  await untilCount(() => done, 2 * o.jobs);
  const endToEndMs = performance.now() - t;
  await stop();
  return {
    enqueuePerSec: (o.jobs / enqueueMs) * 1000,
    processPerSec: (o.jobs / processMs) * 1000,
    endToEndPerSec: (o.jobs / endToEndMs) * 1000,
    // Background commands (heartbeats, snapshot refreshes, breaker flushes) count too: they are part of the cost.
    commandsPerTask: (c1 - c0) / o.jobs,
    enqueueCommandsPerTask: (cEnqueued - c0 - 1) / o.jobs,
  };
}

/**
 * How a bare job looks: BullMQ's own (numbered ids, the data as is), or Switchyard's shape without
 * Switchyard (a custom `<type>~<unique>` id, the payload in an envelope, a custom backoff type), to
 * tell what the job's shape costs from what Switchyard's work costs.
 */
type JobShape = 'bullmq' | 'switchyard';
const shapedJob = (shape: JobShape, id: string, i: number) =>
  shape === 'bullmq'
    ? { name: 'noop', data: { i }, opts: { attempts: 3, removeOnComplete: { age: 3600, count: 100_000 } } }
    : { name: 'noop', data: { payload: { i } }, opts: { jobId: id, attempts: 3, backoff: { type: 'switchyard' }, removeOnComplete: { age: 3600, count: 100_000 } } };

export async function bareBullmq(o: ThroughputOptions, prefix: string, shape: JobShape = 'bullmq'): Promise<PhaseResult> {
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const stats = new Redis(o.redisUrl);
  const queue = new Queue('{noop.default}', { connection, prefix });
  // Unique like Switchyard's ids (time and randomness), and as long: 17 characters after the `~`.
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
  let seq = 0; // each phase feeds i = 0..jobs again: ids must not repeat
  const add = (from: number, n: number) => queue.addBulk(Array.from({ length: n }, (_, k) => shapedJob(shape, `noop~${tag}${(seq++).toString(36)}`, from + k)));
  const result = await phases(o, stats, add, async (onCompleted) => {
    const worker = new Worker('{noop.default}', async (job) => {
      const d = job.data as { i?: number; payload?: { i: number } };
      return { i: d.payload?.i ?? d.i };
    }, { connection, prefix, concurrency: o.concurrency, settings: { backoffStrategy: () => 100 } });
    worker.on('completed', onCompleted);
    return () => worker.close();
  });
  await queue.close();
  await deletePrefix(stats, prefix);
  await Promise.all([connection.quit(), stats.quit()]);
  return result;
}

/** `env`: settings for the producer and the agent (SWITCHYARD_*). */
export async function switchyard(o: ThroughputOptions, prefix: string, env: Record<string, string> = {}): Promise<PhaseResult> {
  const sys = await startProducer(o.redisUrl, prefix, [noop], env);
  const stats = new Redis(o.redisUrl);
  // The enqueue phase routes to a pool that has a registered agent which does not pull yet.
  const timing = { heartbeatMs: 60_000, ttlMs: 180_000 };
  await sys.registry.register({ id: 'bench-holder', type: 'noop', version: '1.0.0', capabilities: [{ name: 'noop', version: '1.0.0' }], concurrency: o.concurrency }, timing);
  await sys.registry.heartbeat('bench-holder', { health: 'HEALTHY', running: 0 }, timing);
  await sys.snapshot.refresh();
  const add = (from: number, n: number) => sys.producer.enqueueBatch(Array.from({ length: n }, (_, k) => ({ type: 'noop', payload: { i: from + k } })));
  const result = await phases(o, stats, add, async (onCompleted) => {
    const agent = await Agent.start({ definition: defineWorker(noop, (p) => ({ i: p.i })), redisUrl: o.redisUrl, config: sys.config, log: silent, concurrency: o.concurrency });
    agent.on('completed', onCompleted);
    return () => agent.close();
  });
  await sys.close();
  await deletePrefix(stats, prefix);
  await stats.quit();
  return result;
}

/** The `throughput` scenario of `npm run bench`, measured and described. */
export async function throughputScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const o = { redisUrl: opts.redis, jobs: opts.jobs, concurrency: opts.concurrency, chunk: 1000 };
  const runs: { bare: PhaseResult[]; shaped: PhaseResult[]; sy: PhaseResult[] } = { bare: [], shaped: [], sy: [] };
  // Round 0 warms up the JIT and connections on both sides and is not counted.
  for (let r = 0; r <= opts.rounds; r++) {
    const tag = `bench-${process.pid}-${r}`;
    const round = r === 0 ? { ...o, jobs: Math.min(o.jobs, 5000) } : o;
    const bare = await bareBullmq(round, `${tag}-b`);
    const shaped = await bareBullmq(round, `${tag}-j`, 'switchyard');
    const sy = await switchyard(round, `${tag}-s`);
    if (r === 0) continue;
    runs.bare.push(bare);
    runs.shaped.push(shaped);
    runs.sy.push(sy);
    progress(`throughput round ${r}/${opts.rounds}: end to end bare BullMQ ${fmt(bare.endToEndPerSec)} tasks/s, Switchyard ${fmt(sy.endToEndPerSec)} tasks/s`);
  }
  const http = await httpBench({ redisUrl: opts.redis, seconds: opts.httpSeconds, connections: opts.httpConnections }, `bench-http-${process.pid}`, progress);
  const pick = (side: PhaseResult[], k: keyof PhaseResult) => median(side.map((x) => x[k]));
  const rows = (['enqueuePerSec', 'processPerSec', 'endToEndPerSec', 'enqueueCommandsPerTask', 'commandsPerTask'] as const).map((k) => ({ k, bare: pick(runs.bare, k), shaped: pick(runs.shaped, k), sy: pick(runs.sy, k) }));
  const label = {
    enqueuePerSec: 'enqueue alone, tasks/s (batches of 1 000; Switchyard routes each task)',
    processPerSec: 'process a ready backlog, tasks/s (no-op handler)',
    endToEndPerSec: 'end to end, tasks/s (producer and worker together)',
    enqueueCommandsPerTask: 'Redis commands per task, enqueue alone',
    commandsPerTask: 'Redis commands per task (enqueue + process, all connections)',
  };
  const perCmd = (k: string) => k === 'commandsPerTask' || k === 'enqueueCommandsPerTask';
  const spread = (side: PhaseResult[]) => `${fmt(Math.min(...side.map((x) => x.endToEndPerSec)))}–${fmt(Math.max(...side.map((x) => x.endToEndPerSec)))}`;
  const text = [
    `Both sides in one process, alternating, after a warm-up round; ${opts.rounds} rounds each, medians. ${fmt(opts.jobs)} tasks per round, worker concurrency ${opts.concurrency}.`,
    'Switchyard routes every task through the live fleet snapshot (weighted strategy, eligibility, backlog limit) and its agent validates payloads and results, enforces timeouts, heartbeats, runs health checks and reports outcomes to the pool breaker.',
    '',
    '| metric | bare BullMQ | bare BullMQ, Switchyard\'s job shape | Switchyard | Switchyard / bare | shape / bare |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const d = perCmd(r.k) ? 1 : 0;
      return `| ${label[r.k]} | ${fmt(r.bare, d)} | ${fmt(r.shaped, d)} | ${fmt(r.sy, d)} | ${(r.sy / r.bare).toFixed(2)} | ${(r.shaped / r.bare).toFixed(2)} |`;
    }),
    `| HTTP ingestion, tasks/s accepted by one API process (autocannon, ${opts.httpConnections} connections, ${opts.httpSeconds} s) | ${fmt(http.bare.requestsPerSec)} | | ${fmt(http.switchyard.requestsPerSec)} | ${(http.switchyard.requestsPerSec / http.bare.requestsPerSec).toFixed(2)} | |`,
    `| HTTP ingestion latency p50 / p99, ms | ${http.bare.latencyMs.p50} / ${http.bare.latencyMs.p99} | | ${http.switchyard.latencyMs.p50} / ${http.switchyard.latencyMs.p99} | | |`,
    '',
    'The middle column is bare BullMQ (no routing, no agent) adding jobs shaped as Switchyard\'s are: a custom id `noop~<unique>` of the same length, the payload in an envelope, a custom backoff type. It separates what the job\'s shape costs from what Switchyard\'s work costs. Switchyard writes a pool queue\'s jobs in one script call (src/redis/lua/job-batch-add.lua: BullMQ\'s add per job, the queue\'s steps once), agents fetch many per call and commit by group commit (src/agent/batched-worker.ts): fewer Redis commands per task than bare BullMQ\'s one script call per add, fetch and completion. Switchyard names its tasks (`<type>~<unique>`) so that a lookup needs no index and an interrupted idempotent request can be re-added under the same id; longer ids also make every key and stream entry of the job longer. HTTP: the bare reference is Express with its JSON parser and one `queue.add` per request, no validation, routing or auth (bench/bare-http.ts); autocannon runs in the bench process, on the same two cores.',
    '',
    `End-to-end rate across rounds: bare ${spread(runs.bare)}, Switchyard ${spread(runs.sy)} tasks/s. On this 2-core machine Redis and Node share the cores, so single rounds swing by ±30 %; compare the ratios.`,
  ].join('\n');
  const e2e = rows.find((x) => x.k === 'endToEndPerSec')!;
  const enq = rows.find((x) => x.k === 'enqueueCommandsPerTask')!;
  const cmds = rows.find((x) => x.k === 'commandsPerTask')!;
  const summary = [
    summaryRow('throughput end to end, tasks/s', fmt(e2e.bare), fmt(e2e.sy), (e2e.sy / e2e.bare).toFixed(2), '≥ 0.90', e2e.sy / e2e.bare >= 0.9),
    summaryRow('Redis commands per task added on the enqueue path', fmt(enq.bare, 1), fmt(enq.sy, 1), `${enq.sy >= enq.bare ? '+' : '−'}${fmt(Math.abs(enq.sy - enq.bare), 1)}`, '+0', enq.sy - enq.bare < 0.5),
    summaryRow('Redis commands per task, enqueue + process (issue 23: ≤ 18)', fmt(cmds.bare, 1), fmt(cmds.sy, 1), (cmds.sy / cmds.bare).toFixed(2), '≤ 18', cmds.sy <= 18),
    summaryRow('HTTP ingestion, tasks/s (one API process)', fmt(http.bare.requestsPerSec), fmt(http.switchyard.requestsPerSec), (http.switchyard.requestsPerSec / http.bare.requestsPerSec).toFixed(2), '≥ 5 000/s', http.switchyard.requestsPerSec >= 5000),
    summaryRow('HTTP ingestion p99, ms', fmt(http.bare.latencyMs.p99), fmt(http.switchyard.latencyMs.p99), (http.switchyard.latencyMs.p99 / http.bare.latencyMs.p99).toFixed(2), '< 50 ms', http.switchyard.latencyMs.p99 < 50),
  ];
  const shapedE2e = rows.find((x) => x.k === 'endToEndPerSec')!.shaped;
  summary.push(summaryRow('throughput end to end: bare BullMQ with Switchyard\'s job shape (custom ids), tasks/s', fmt(e2e.bare), fmt(shapedE2e), (shapedE2e / e2e.bare).toFixed(2), '', undefined));
  return { summary, title: 'Throughput against bare BullMQ', command: `npm run bench -- throughput --jobs ${opts.jobs} --concurrency ${opts.concurrency} --rounds ${opts.rounds} --http-seconds ${opts.httpSeconds} --http-connections ${opts.httpConnections}`, text, data: { ...runs, http } };
}
