/**
 * The reference side of the process-based scenarios: a bare BullMQ Worker in its own process,
 * doing what the `flaky` agent type does (sleep latencyMs ± jitterMs, fail with probability
 * failRate) and nothing else. Configured by environment: REDIS_URL, BENCH_PREFIX, BENCH_QUEUE,
 * BENCH_CONCURRENCY. Prints "ready" once it pulls.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

interface Work {
  latencyMs?: number;
  jitterMs?: number;
  failRate?: number;
}

const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const worker = new Worker(
  process.env.BENCH_QUEUE ?? 'bare',
  async (job) => {
    const w = (job.data ?? {}) as Work;
    const delay = (w.latencyMs ?? 0) + (w.jitterMs ? Math.round((Math.random() * 2 - 1) * w.jitterMs) : 0);
    if (delay > 0) await sleep(delay);
    if (w.failRate && Math.random() < w.failRate) throw new Error(`failure on attempt ${job.attemptsMade + 1}`);
    return { ok: true };
  },
  { connection, prefix: process.env.BENCH_PREFIX ?? 'bare', concurrency: Number(process.env.BENCH_CONCURRENCY ?? 10) },
);
worker.on('error', () => undefined);
await worker.waitUntilReady();
process.stdout.write('ready\n');
const stop = async () => {
  await worker.close();
  connection.disconnect();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
