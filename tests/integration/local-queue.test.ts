/**
 * An agent's local queue (tasks fetched ahead of its handlers, src/agent/batched-worker.ts) under the
 * agent's own controls, on real Redis: a cancel reaches a task waiting there before its handler runs;
 * a drain hands the waiting ones back without spending an attempt.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { queueName } from '../../src/model/names.ts';
import { Registry } from '../../src/registry/registry.ts';
import { TaskCanceller } from '../../src/task/cancel.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { producerSystem, silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('local-queue');
const slow = defineAgentType({
  name: 'slow',
  version: '1.0.0',
  payload: z.object({ n: z.number(), ms: z.number() }),
  result: z.object({ n: z.number() }),
  defaults: { attempts: 3, timeoutMs: 10_000 },
});
const sys = producerSystem(prefix, { catalogue: new Catalogue([slow]) });
const config = { ...testConfig(prefix), prefetch: 5 };
const ran: number[] = [];
const agents: Agent[] = [];
const queue = new Queue(queueName({ type: 'slow', pool: 'default' }), { connection: redis, prefix });

beforeAll(async () => {
  await sys.ready;
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await queue.close();
});

const start = async (pool: string) => {
  const agent = await Agent.start({
    definition: defineWorker(slow, async ({ n, ms }) => {
      ran.push(n);
      await new Promise((r) => setTimeout(r, ms));
      return { n };
    }),
    redisUrl: REDIS_URL, config, log: silentLog, concurrency: 1, pool,
  });
  agents.push(agent);
  return agent;
};

describe("an agent's local queue", () => {
  it('ends a task cancelled while it waits there as cancelled, without running its handler', async () => {
    await start('default');
    const ids = (await sys.producer.enqueueBatch([1, 2, 3].map((n) => ({ type: 'slow', payload: { n, ms: 600 } })))).map((r) => r.task.id);
    // One runs, two wait fetched in the agent (active, not started).
    await waitFor(async () => (await queue.getActiveCount()) === 3 && ran.length === 1, { what: 'one running, two in the local queue' });
    const canceller = new TaskCanceller(sys.redis, prefix, sys.queues, sys.lookup, 60);
    await canceller.cancel(ids[2]!, 'not needed any more', 0);
    const views = await waitFor(async () => {
      const vs = await Promise.all(ids.map((id) => sys.lookup.find(id)));
      return vs.every((v) => v && ['completed', 'cancelled', 'dead'].includes(v.state)) ? vs : undefined;
    }, { what: 'the three tasks to end' });
    expect(views.map((v) => v!.state)).toEqual(['completed', 'completed', 'cancelled']);
    expect(ran).toEqual([1, 2]);
  });

  it('hands the tasks waiting there back on a drain, their attempts unspent', async () => {
    const agent = await start('drained');
    const ids = (await sys.producer.enqueueBatch([4, 5, 6, 7].map((n) => ({ type: 'slow', pool: 'drained', payload: { n, ms: 1500 } })))).map((r) => r.task.id);
    const drained = new Queue(queueName({ type: 'slow', pool: 'drained' }), { connection: redis, prefix });
    try {
      await waitFor(async () => (await drained.getActiveCount()) === 4, { what: 'one running, three in the local queue' });
      await new Registry(sys.redis, prefix).drain(agent.id);
      const waiting = await waitFor(async () => {
        const w = await drained.getWaiting();
        return w.length === 3 ? w : undefined;
      }, { what: 'the three not started back to waiting' });
      for (const job of waiting) expect(job.attemptsStarted).toBe(0);
      expect(await drained.getActiveCount()).toBe(1);
      expect(waiting.map((j) => j.id).sort()).toEqual(ids.slice(1).sort());
    } finally {
      await drained.close();
    }
  });
});
