/**
 * Moving a task between pool queues (dispatcher re-routes, dead-letter replay): add to the new queue,
 * then remove from the old one. When the old copy was taken by an agent in between, the new copy is
 * taken back, so the task does not run in two pools (seen in the README tour: a breaker's pool resumes
 * pulling at the moment its tasks move away, and one task completed in two pools).
 */
import { Worker, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/connection.ts';
import { expandDecision } from '../../src/model/routing.ts';
import type { TaskEnvelope } from '../../src/model/task-envelope.ts';
import { moveTask } from '../../src/task/move.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('move');
const redis = createRedis(REDIS_URL, 'client');
const workerRedis = createRedis(REDIS_URL, 'blocking');
const queues = new PoolQueues(redis, prefix);
const from = { type: 'echo', pool: 'broken' };
const to = { type: 'echo', pool: 'good' };
const routing = expandDecision(undefined, 'good');
let release: () => void = () => {};
let runs = 0;
const worker = new Worker(
  queues.get(from).name,
  async () => {
    runs++;
    await new Promise<void>((r) => (release = r));
    return { ok: true };
  },
  { connection: workerRedis, prefix, autorun: false },
);

beforeAll(async () => {
  if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
});
afterAll(async () => {
  release();
  await worker.close();
  await queues.close();
  redis.disconnect();
  workerRedis.disconnect();
});

describe('moveTask', () => {
  it('moves a waiting task: the new queue has it, the old one not', async () => {
    const old = (await (await queues.forWriting(from)).add('echo', { payload: { n: 1 } } as unknown as TaskEnvelope, { jobId: 'echo~waiting1' })) as Job<TaskEnvelope>;
    expect(await moveTask(queues, old, to, routing)).toBe(true);
    expect(await queues.get(from).getJob('echo~waiting1')).toBeUndefined();
    expect(await queues.get(to).getJobState('echo~waiting1')).toBe('waiting');
  });

  it('takes the new copy back when an agent took the old one meanwhile, so it runs in one pool only', async () => {
    const old = (await (await queues.forWriting(from)).add('echo', { payload: { n: 2 } } as unknown as TaskEnvelope, { jobId: 'echo~taken1' })) as Job<TaskEnvelope>;
    worker.run().catch(() => undefined);
    await waitFor(async () => (await queues.get(from).getJobState('echo~taken1')) === 'active', { what: 'the old copy to be taken' });
    expect(await moveTask(queues, old, to, routing)).toBe(false);
    expect(await queues.get(to).getJob('echo~taken1')).toBeUndefined();
    release();
    await waitFor(async () => (await queues.get(from).getJobState('echo~taken1')) === 'completed', { what: 'the old copy to complete' });
    expect(runs).toBe(1);
  });
});
