/**
 * The fair order's tags on a real BullMQ queue: keys take turns from the head of the queue, a key
 * with nothing waiting starts level again, and when the head's tag passes the rebase point every
 * waiting task's priority is lowered by the same amount, keeping the order BullMQ runs them in.
 */
import { Job, Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { FairOrder } from '../../src/task/fair-order.ts';
import { useRedisPrefix } from '../support/redis.ts';

const { prefix, redis } = useRedisPrefix('fair-order');
const name = '{fair.default}';
const queue = new Queue(name, { connection: redis, prefix });
afterAll(() => queue.close());

const add = async (order: FairOrder, keys: string[]) => {
  const tags = await order.tags(name, keys);
  await queue.addBulk(keys.map((k, i) => ({ name: 'fair', data: { k }, opts: { priority: tags[i]! } })));
  return tags;
};

describe('FairOrder', () => {
  it('gives a new key turns from the head of the queue, not after the backlog', async () => {
    const order = new FairOrder(redis, prefix);
    expect(await add(order, ['a', 'a', 'a', 'a'])).toEqual([1, 2, 3, 4]);
    expect(await add(order, ['b', 'b', 'a'])).toEqual([2, 3, 5]);
    await queue.obliterate({ force: true });
    // Nothing waits: every key starts level.
    expect(await add(order, ['a', 'b'])).toEqual([1, 1]);
    await queue.obliterate({ force: true });
  });

  it('lowers every waiting priority by the same amount once the head passes the rebase point', async () => {
    const order = new FairOrder(redis, prefix, 5);
    await add(order, Array.from({ length: 20 }, () => 'a'));
    const waiting = (await queue.getJobs(['prioritized'], 0, -1, true)).map((j) => j.id!);
    for (const id of waiting.slice(0, 10)) await queue.remove(id);
    // The head is now at tag 11: past 5, so the tags come down by 10.
    expect(await add(order, ['a', 'b'])).toEqual([11, 2]);
    const after = await queue.getJobs(['prioritized'], 0, -1, true);
    const priorities = await Promise.all(after.map(async (j) => (await Job.fromId(queue, j.id!))!.priority));
    expect(priorities).toEqual([1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // b's first task runs right after a's at the same turn (written earlier), not after a's backlog.
    expect(after.map((j) => j.data.k).join('')).toBe('aabaaaaaaaaa');
  });
});
