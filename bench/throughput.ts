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
import { Agent, Catalogue, createLogger, defineAgentType, defineWorker, loadConfig } from '../src/index.ts';
import { BreakerWatch } from '../src/breaker/watch.ts';
import { BREAKER_PRESETS } from '../src/breaker/policy.ts';
import { createRedis } from '../src/redis/connection.ts';
import { Registry } from '../src/registry/registry.ts';
import { FleetRouter } from '../src/routing/router.ts';
import { FleetSnapshot } from '../src/routing/snapshot.ts';
import { PoolQueues } from '../src/task/pool-queues.ts';
import { TaskProducer } from '../src/task/producer.ts';
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
}

const noop = defineAgentType({ name: 'noop', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({ i: z.number() }) });
const silent = createLogger({ logLevel: 'silent', logPretty: false });

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
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent' });
  const redis = createRedis(o.redisUrl, 'client');
  const background = createRedis(o.redisUrl, 'blocking');
  const subscriber = createRedis(o.redisUrl, 'blocking');
  const stats = new Redis(o.redisUrl);
  await new Promise((r) => redis.once('ready', r));
  const catalogue = new Catalogue([noop]);
  const queues = new PoolQueues(redis, prefix);
  const snapshotQueues = new PoolQueues(background, prefix);
  const watch = new BreakerWatch(background, subscriber, prefix, () => BREAKER_PRESETS.batch);
  const snapshot = new FleetSnapshot(new Registry(background, prefix), snapshotQueues, watch, subscriber, prefix, silent);
  await watch.start();
  await snapshot.start();
  const producer = new TaskProducer({ redis, queues, catalogue, router: new FleetRouter(snapshot, catalogue), config, backlog: (t) => snapshot.backlog(t) });
  // The enqueue phase routes to a pool that has a registered agent which does not pull yet.
  const registry = new Registry(background, prefix);
  const timing = { heartbeatMs: 60_000, ttlMs: 180_000 };
  await registry.register({ id: 'bench-holder', type: 'noop', version: '1.0.0', capabilities: [{ name: 'noop', version: '1.0.0' }], concurrency: o.concurrency }, timing);
  await registry.heartbeat('bench-holder', { health: 'HEALTHY', running: 0 }, timing);
  await snapshot.refresh();
  const add = (from: number, n: number) => producer.enqueueBatch(Array.from({ length: n }, (_, k) => ({ type: 'noop', payload: { i: from + k } })));
  const result = await phases(o, stats, add, async (onCompleted) => {
    const agent = await Agent.start({ definition: defineWorker(noop, (p) => ({ i: p.i })), redisUrl: o.redisUrl, config, log: silent, concurrency: o.concurrency });
    agent.on('completed', onCompleted);
    return () => agent.close();
  });
  await snapshot.stop();
  await watch.stop();
  await Promise.all([queues.close(), snapshotQueues.close()]);
  await deletePrefix(stats, prefix);
  await Promise.all([redis, background, subscriber, stats].map((c) => c.quit()));
  return result;
}
