/**
 * Memory: Redis bytes per waiting task (the same payload added through bare BullMQ and through
 * Switchyard, measured as used_memory growth), and the resident memory of one agent process at
 * concurrency 100 working through a backlog, against a bare BullMQ worker process doing the same.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import demoTypes from '../queues/index.ts';
import { rssBytes, startAgent, startBareWorker, stop } from './processes.ts';
import { startProducer } from './producer.ts';
import { deletePrefix } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { queueName } from '../src/index.ts';

export interface MemoryOptions {
  redisUrl: string;
  tasks: number;
  concurrency: number;
}

export interface MemoryResult {
  payloadBytes: number;
  tasks: number;
  redisBytesPerTask: { bare: number; switchyard: number };
  rss: { bare: number; switchyard: number; tasks: number; concurrency: number };
}

const PAYLOAD = { message: 'x'.repeat(200), latencyMs: 0 };

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

/** used_memory growth while `add` writes `n` tasks, per task (median of three tries). */
async function bytesPerTask(stats: Redis, n: number, add: () => Promise<void>, cleanup: () => Promise<unknown>): Promise<number> {
  const tries: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = await usedMemory(stats);
    await add();
    const after = await usedMemory(stats);
    tries.push((after - before) / n);
    await cleanup();
    await sleep(200);
  }
  return tries.sort((a, b) => a - b)[1]!;
}

/** Peak RSS of `pid` while `done()` is false, sampled every 50 ms. */
async function peakRss(pid: number, done: () => Promise<boolean>): Promise<number> {
  let peak = rssBytes(pid);
  while (!(await done())) {
    peak = Math.max(peak, rssBytes(pid));
    await sleep(50);
  }
  return Math.max(peak, rssBytes(pid));
}

export async function memoryBench(o: MemoryOptions, prefix: string, progress: (m: string) => void): Promise<MemoryResult> {
  const stats = new Redis(o.redisUrl);
  const chunk = (n: number) => Array.from({ length: Math.ceil(n / 1000) }, (_, i) => Math.min(1000, n - i * 1000));

  // Bare BullMQ: the payload as job data, the options a BullMQ user would set.
  const bp = `${prefix}-b`;
  const bareConn = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const bareQueue = new Queue('echo', { connection: bareConn, prefix: bp });
  const bareAdd = async () => {
    for (const n of chunk(o.tasks)) await bareQueue.addBulk(Array.from({ length: n }, () => ({ name: 'echo', data: PAYLOAD, opts: { attempts: 3, removeOnComplete: { age: 86_400, count: 100_000 } } })));
  };
  const bare = await bytesPerTask(stats, o.tasks, bareAdd, () => deletePrefix(stats, bp));

  // Switchyard: routed by the producer into a pool with an agent registered (not pulling).
  const sp = `${prefix}-s`;
  const sys = await startProducer(o.redisUrl, sp, demoTypes);
  const timing = { heartbeatMs: 600_000, ttlMs: 1_800_000 };
  const holder = async () => {
    await sys.registry.register({ id: 'bench-holder', type: 'echo', version: '1.0.0', capabilities: [{ name: 'echo', version: '1.0.0' }], concurrency: 1 }, timing);
    await sys.registry.heartbeat('bench-holder', { health: 'HEALTHY', running: 0 }, timing);
    await sys.snapshot.refresh();
  };
  await holder();
  const syAdd = async () => {
    for (const n of chunk(o.tasks)) await sys.producer.enqueueBatch(Array.from({ length: n }, () => ({ type: 'echo', payload: PAYLOAD })));
  };
  const sy = await bytesPerTask(stats, o.tasks, syAdd, async () => {
    await deletePrefix(stats, sp);
    await holder();
  });
  progress(`memory: Redis bytes per waiting task, bare ${Math.round(bare)}, Switchyard ${Math.round(sy)}`);

  // RSS of a worker process at concurrency 100 through a backlog.
  await bareAdd();
  const bareWorker = await startBareWorker({ redisUrl: o.redisUrl, prefix: bp, queue: 'echo', concurrency: o.concurrency });
  const bareRss = await peakRss(bareWorker.pid!, async () => (await bareQueue.getJobCounts('completed')).completed! >= o.tasks);
  await stop(bareWorker);
  await bareQueue.close();
  bareConn.disconnect();
  await deletePrefix(stats, bp);

  await syAdd();
  const agent = await startAgent({ redisUrl: o.redisUrl, prefix: sp, type: 'echo', concurrency: o.concurrency });
  const pool = new Queue(queueName({ type: 'echo', pool: 'default' }), { connection: sys.redis, prefix: sp });
  const syRss = await peakRss(agent.pid!, async () => (await pool.getJobCounts('completed')).completed! >= o.tasks);
  await stop(agent);
  await pool.close();
  await sys.close();
  await deletePrefix(stats, sp);
  await stats.quit();
  progress(`memory: peak RSS at concurrency ${o.concurrency}, bare worker ${Math.round(bareRss / 1048576)} MiB, agent ${Math.round(syRss / 1048576)} MiB`);
  return {
    payloadBytes: JSON.stringify(PAYLOAD).length,
    tasks: o.tasks,
    redisBytesPerTask: { bare, switchyard: sy },
    rss: { bare: bareRss, switchyard: syRss, tasks: o.tasks, concurrency: o.concurrency },
  };
}

/** The `memory` scenario of `npm run bench`, measured and described. */
export async function memoryScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const r = await memoryBench({ redisUrl: opts.redis, tasks: opts.memTasks, concurrency: 100 }, `bench-mem-${process.pid}`, progress);
  const mib = (b: number) => `${fmt(b / 1048576, 1)} MiB`;
  const text = [
    `Redis memory: ${fmt(r.tasks)} waiting tasks with the same ${r.payloadBytes}-byte JSON payload, added through bare BullMQ (\`addBulk\`, attempts and removeOnComplete set) and through Switchyard's producer (routed, with its envelope); growth of \`used_memory\`, median of three tries. Process memory: peak RSS of one worker process at concurrency ${r.rss.concurrency} working through ${fmt(r.rss.tasks)} such tasks: a bare BullMQ worker process against a \`switchyard agent echo\` agent (registry, heartbeats, health checks, breaker).`,
    '',
    '| figure | bare BullMQ | Switchyard | difference |',
    '|---|---:|---:|---:|',
    `| Redis bytes per waiting task | ${fmt(r.redisBytesPerTask.bare)} | ${fmt(r.redisBytesPerTask.switchyard)} | ${r.redisBytesPerTask.switchyard >= r.redisBytesPerTask.bare ? '+' : ''}${fmt(r.redisBytesPerTask.switchyard - r.redisBytesPerTask.bare)} B |`,
    `| peak RSS of a worker process at concurrency ${r.rss.concurrency} | ${mib(r.rss.bare)} | ${mib(r.rss.switchyard)} | ${mib(r.rss.switchyard - r.rss.bare)} |`,
  ].join('\n');
  const extra = r.redisBytesPerTask.switchyard - r.redisBytesPerTask.bare;
  const summary = [
    summaryRow('Redis bytes per waiting task', fmt(r.redisBytesPerTask.bare), fmt(r.redisBytesPerTask.switchyard), `+${fmt(extra)} B`, '≤ +1 KiB', extra <= 1024),
    summaryRow(`peak RSS of a worker process at concurrency ${r.rss.concurrency}`, mib(r.rss.bare), mib(r.rss.switchyard), (r.rss.switchyard / r.rss.bare).toFixed(2)),
  ];
  return { summary, title: 'Memory', command: `npm run bench -- memory --mem-tasks ${r.tasks}`, text, data: r };
}
