import { beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/redis/keys.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { producerSystem } from '../support/system.ts';

const { prefix, redis } = useRedisPrefix('producer');
const sys = producerSystem(prefix);
beforeAll(() => sys.ready);

const jobCount = async (type: string, pool = 'default') => {
  const counts = await sys.queues.get({ type, pool }).getJobCounts();
  return Object.values(counts).reduce((a, b) => a + b, 0);
};

describe('TaskProducer', () => {
  it('puts a task on its pool queue, with the hash tag on the queue name', async () => {
    const { task, created } = await sys.producer.enqueue({ type: 'echo', payload: { message: 'hi' } });
    expect(created).toBe(true);
    expect(task).toMatchObject({ type: 'echo', pool: 'default', state: 'waiting', routing: { pool: 'default' } });
    expect(await redis.exists(`${prefix}:{echo.default}:${task.id}`)).toBe(1);
    expect(await redis.sismember(keys(prefix).queueCatalogue, '{echo.default}')).toBe(1);
  });

  it('applies type defaults and per-task overrides', async () => {
    const { task } = await sys.producer.enqueue({ type: 'flaky', payload: {}, attempts: 9, priority: 5, delayMs: 60_000, timeoutMs: 1234 });
    const job = await sys.queues.get({ type: 'flaky', pool: 'default' }).getJob(task.id);
    expect(job!.opts).toMatchObject({ attempts: 9, priority: 5, delay: 60_000 });
    expect(job!.data).toMatchObject({ timeoutMs: 1234, payload: { failRate: 0, latencyMs: 0 } });
    expect(task.state).toBe('delayed');
  });

  it('sends a task to the pool it names', async () => {
    const { task } = await sys.producer.enqueue({ type: 'echo', payload: {}, pool: 'premium' });
    expect(task.pool).toBe('premium');
    expect(await redis.exists(`${prefix}:{echo.premium}:${task.id}`)).toBe(1);
  });

  it('returns the same task for the same idempotency key and enqueues nothing new', async () => {
    const before = await jobCount('transform');
    const req = { type: 'transform', payload: { text: 'a' }, idempotencyKey: 'order-42' };
    const first = await sys.producer.enqueue(req);
    const second = await sys.producer.enqueue(req);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.task.id).toBe(first.task.id);
    expect(await jobCount('transform')).toBe(before + 1);
  });

  it('repairs a reservation left by a request that died before adding its job', async () => {
    await redis.set(keys(prefix).idempotency('echo', 'crashed'), `{echo.default} echo~reservedid1`);
    const { task, created } = await sys.producer.enqueue({ type: 'echo', payload: {}, idempotencyKey: 'crashed' });
    expect(created).toBe(true);
    expect(task.id).toBe('echo~reservedid1');
    expect(await redis.exists(`${prefix}:{echo.default}:echo~reservedid1`)).toBe(1);
  });

  it('writes every task of a batch that mixes keyed and unkeyed tasks (the unkeyed ones were once dropped)', async () => {
    const results = await sys.producer.enqueueBatch([
      { type: 'echo', payload: { i: 1 } },
      { type: 'echo', payload: { i: 2 }, idempotencyKey: 'mixed-1' },
      { type: 'echo', payload: { i: 3 } },
    ]);
    expect(results.map((r) => r.created)).toEqual([true, true, true]);
    for (const { task } of results) expect(await redis.exists(`${prefix}:{echo.default}:${task.id}`), task.id).toBe(1);
  });

  it('answers with the pool a reservation names when a retry would have routed elsewhere', async () => {
    await redis.set(keys(prefix).idempotency('echo', 'elsewhere'), `{echo.reservedpool} echo~reservedid2`);
    const { task } = await sys.producer.enqueue({ type: 'echo', payload: {}, idempotencyKey: 'elsewhere' });
    expect(task).toMatchObject({ id: 'echo~reservedid2', pool: 'reservedpool', routing: { pool: 'reservedpool', reason: expect.stringMatching(/earlier request with the same idempotencyKey/) } });
    expect(await sys.lookup.find(task.id)).toMatchObject({ pool: 'reservedpool', routing: { pool: 'reservedpool' } });
  });

  it('rejects an unknown type with UNKNOWN_AGENT_TYPE and a bad payload with field paths', async () => {
    await expect(sys.producer.enqueue({ type: 'nope', payload: {} })).rejects.toMatchObject({ code: 'UNKNOWN_AGENT_TYPE' });
    await expect(sys.producer.enqueue({ type: 'transform', payload: { text: 5 } })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [{ path: 'payload.text' }],
    });
  });

  it('enqueues a batch across pools and finds each task by id', async () => {
    const results = await sys.producer.enqueueBatch([
      { type: 'echo', payload: { i: 1 } },
      { type: 'echo', payload: { i: 2 }, pool: 'batchpool' },
      { type: 'transform', payload: { text: 'x', ops: ['upper'] } },
    ]);
    expect(results.map((r) => r.task.pool)).toEqual(['default', 'batchpool', 'default']);
    for (const { task } of results) {
      const view = await sys.lookup.find(task.id);
      expect(view).toMatchObject({ id: task.id, state: 'waiting', type: task.type, pool: task.pool });
    }
  });

  it('rejects a whole batch, naming every bad task, and writes nothing', async () => {
    const before = await jobCount('echo');
    await expect(
      sys.producer.enqueueBatch([
        { type: 'echo', payload: {} },
        { type: 'transform', payload: { text: 1 } },
        { type: 'ghost', payload: {} },
        { type: 'echo', payload: {}, idempotencyKey: 'k' },
        { type: 'echo', payload: {}, idempotencyKey: 'k' },
      ]),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [{ path: 'tasks[1].payload.text' }, { path: 'tasks[2].type' }, { path: 'tasks[4].idempotencyKey' }],
    });
    expect(await jobCount('echo')).toBe(before);
    expect(await redis.exists(keys(prefix).idempotency('echo', 'k'))).toBe(0);
  });

  it('caps batch size', async () => {
    const tasks = Array.from({ length: sys.config.maxBatch + 1 }, () => ({ type: 'echo', payload: {} }));
    await expect(sys.producer.enqueueBatch(tasks)).rejects.toThrow(/at most 1000 tasks/);
  });

  it('finds tasks in pools another process created', async () => {
    const other = producerSystem(prefix);
    await other.ready;
    const { task } = await other.producer.enqueue({ type: 'echo', payload: {}, pool: 'elsewhere' });
    expect(sys.queues.ofType('echo').length).toBeGreaterThan(0);
    expect(await sys.lookup.find(task.id)).toMatchObject({ id: task.id, pool: 'elsewhere' });
  });

  it('answers undefined for ids it cannot hold', async () => {
    expect(await sys.lookup.find('echo~doesnotexist')).toBeUndefined();
    expect(await sys.lookup.find('ghost~abc')).toBeUndefined();
    expect(await sys.lookup.find('not-an-id')).toBeUndefined();
  });
});
