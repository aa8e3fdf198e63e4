/**
 * An agent process of the flow bench's keyed runs. Its handler keeps its own ledger in Redis, apart
 * from Switchyard's: each task counts itself done (`bench:done`), records when a task of key `b`
 * finished (`bench:b`), and, with BENCH_COUNT=1, adds itself to its key's set of running tasks while
 * it runs (`bench:running:<key>`, members `<pid>:<task id>`) and records the most that set ever held
 * (`bench:most`): what the handlers saw, whatever Switchyard counts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Agent, createLogger, defineWorker, loadConfig } from '../src/index.ts';
import { keyedType } from './keyed-type.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const count = process.env.BENCH_COUNT === '1';
const ledger = new Redis(url);
const ENTER = `redis.call('SADD', KEYS[1], ARGV[1]) local n = redis.call('SCARD', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or 0) then redis.call('SET', KEYS[2], n) end return n`;

const worker = defineWorker(keyedType, async (p, ctx) => {
  const me = `${process.pid}:${ctx.taskId}`;
  if (count) await ledger.eval(ENTER, 2, `bench:running:${p.key}`, 'bench:most', me);
  if (p.ms > 0) await sleep(p.ms);
  const done = ledger.multi();
  if (count) done.srem(`bench:running:${p.key}`, me);
  if (p.key === 'b') done.rpush('bench:b', Date.now());
  await done.incr('bench:done').exec();
  return {};
});

const config = loadConfig(process.env);
const agent = await Agent.start({ definition: worker, redisUrl: url, config, log: createLogger(config), concurrency: Number(process.env.BENCH_CONCURRENCY ?? 20) });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void (async () => {
      await agent.close();
      await ledger.quit();
      process.exit(0);
    })();
  });
}
