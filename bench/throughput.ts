/**
 * Throughput of no-op tasks: bare BullMQ (Queue.addBulk + Worker) against Switchyard (TaskProducer
 * + Agent, with validation, envelopes and routing decisions), in one run, on the same Redis.
 * Both sides run in this process, so the figures compare the libraries, not process layouts.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { Agent, Catalogue, createLogger, defineAgentType, defineWorker, loadConfig } from '../src/index.ts';
import { createRedis } from '../src/redis/connection.ts';
import { fixedRouter } from '../src/routing/fixed.ts';
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
  commandsPerTask: number;
}

const noop = defineAgentType({ name: 'noop', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({ i: z.number() }) });

async function untilCount(get: () => number, n: number): Promise<void> {
  while (get() < n) await new Promise((r) => setTimeout(r, 5));
}

export async function bareBullmq(o: ThroughputOptions, prefix: string): Promise<PhaseResult> {
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const stats = new Redis(o.redisUrl);
  const queue = new Queue('{noop.default}', { connection, prefix });
  const c0 = await totalCommands(stats);
  let t = performance.now();
  for (let i = 0; i < o.jobs; i += o.chunk) {
    const n = Math.min(o.chunk, o.jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: { attempts: 3, removeOnComplete: { age: 3600, count: 100_000 } } })));
  }
  const enqueueMs = performance.now() - t;
  let done = 0;
  t = performance.now();
  const worker = new Worker('{noop.default}', async (job) => ({ i: (job.data as { i: number }).i }), { connection, prefix, concurrency: o.concurrency });
  worker.on('completed', () => done++);
  await untilCount(() => done, o.jobs);
  const processMs = performance.now() - t;
  await worker.close();
  const c1 = await totalCommands(stats);
  await queue.close();
  await deletePrefix(stats, prefix);
  await Promise.all([connection.quit(), stats.quit()]);
  return { enqueuePerSec: (o.jobs / enqueueMs) * 1000, processPerSec: (o.jobs / processMs) * 1000, commandsPerTask: (c1 - c0 - 2) / o.jobs };
}

export async function switchyard(o: ThroughputOptions, prefix: string): Promise<PhaseResult> {
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent' });
  const redis = createRedis(o.redisUrl, 'client');
  const stats = new Redis(o.redisUrl);
  await new Promise((r) => redis.once('ready', r));
  const queues = new PoolQueues(redis, prefix);
  const producer = new TaskProducer({ redis, queues, catalogue: new Catalogue([noop]), router: fixedRouter, config });
  const c0 = await totalCommands(stats);
  let t = performance.now();
  for (let i = 0; i < o.jobs; i += o.chunk) {
    const n = Math.min(o.chunk, o.jobs - i);
    await producer.enqueueBatch(Array.from({ length: n }, (_, k) => ({ type: 'noop', payload: { i: i + k } })));
  }
  const enqueueMs = performance.now() - t;
  t = performance.now();
  const agent = await Agent.start({
    definition: defineWorker(noop, (p) => ({ i: p.i })),
    redisUrl: o.redisUrl,
    config,
    log: createLogger({ logLevel: 'silent', logPretty: false }),
    concurrency: o.concurrency,
  });
  let done = 0;
  agent.on('completed', () => done++);
  await untilCount(() => done, o.jobs);
  const processMs = performance.now() - t;
  await agent.close();
  const c1 = await totalCommands(stats);
  await queues.close();
  await deletePrefix(stats, prefix);
  await Promise.all([redis.quit(), stats.quit()]);
  return { enqueuePerSec: (o.jobs / enqueueMs) * 1000, processPerSec: (o.jobs / processMs) * 1000, commandsPerTask: (c1 - c0) / o.jobs };
}
