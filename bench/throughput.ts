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

export async function bareBullmq(o: ThroughputOptions, prefix: string): Promise<PhaseResult> {
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const stats = new Redis(o.redisUrl);
  const queue = new Queue('{noop.default}', { connection, prefix });
  const add = (from: number, n: number) =>
    queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: from + k }, opts: { attempts: 3, removeOnComplete: { age: 3600, count: 100_000 } } })));
  const result = await phases(o, stats, add, async (onCompleted) => {
    const worker = new Worker('{noop.default}', async (job) => ({ i: (job.data as { i: number }).i }), { connection, prefix, concurrency: o.concurrency });
    worker.on('completed', onCompleted);
    return () => worker.close();
  });
  await queue.close();
  await deletePrefix(stats, prefix);
  await Promise.all([connection.quit(), stats.quit()]);
  return result;
}

export async function switchyard(o: ThroughputOptions, prefix: string): Promise<PhaseResult> {
  const sys = await startProducer(o.redisUrl, prefix, [noop]);
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
