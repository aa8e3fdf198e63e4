/**
 * An agent type's rate per pool (`limits.ratePerPool`), shared by the pool's agents through BullMQ's
 * queue rate limiter in Redis: three agents of one pool together start no more than the rate allows,
 * and the pool listing and the agent types show the limit.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { queueName } from '../../src/model/names.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { json } from '../support/http.ts';

const RATE = { max: 10, perMs: 1000 };
const metered = defineAgentType({ name: 'metered', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({ i: z.number() }), limits: { ratePerPool: RATE } });
const meteredWorker = defineWorker(metered, async (p) => ({ i: p.i }));

const { prefix, redis } = useRedisPrefix('rate-per-pool');
let api: ApiServer;
const agents: Agent[] = [];

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0 });
  for (let i = 0; i < 3; i++) agents.push(await Agent.start({ definition: meteredWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10 }));
  api = await startApi({ config, catalogue: new Catalogue([metered]), redisUrl: REDIS_URL, log: silentLog });
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api.close();
});

describe('rate per pool', () => {
  it('three agents of a pool together start at most max tasks per perMs', async () => {
    const res = await fetch(`${api.url}/v1/tasks/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: Array.from({ length: 40 }, (_, i) => ({ type: 'metered', payload: { i } })) }),
    });
    expect(res.status).toBe(202);
    const pools = await json(fetch(`${api.url}/v1/pools?type=metered`));
    expect(pools[0].rateLimit).toMatchObject(RATE);
    const queue = new Queue(queueName({ type: 'metered', pool: 'default' }), { connection: redis, prefix });
    try {
      await waitFor(async () => (await queue.getJobCounts('completed')).completed === 40, { timeoutMs: 20_000, what: '40 tasks completed' });
      const starts = (await queue.getJobs(['completed'], 0, -1)).map((j) => j.processedOn!).sort((a, b) => a - b);
      const busiest = Math.max(...starts.map((t) => starts.filter((s) => s >= t && s < t + RATE.perMs).length));
      expect(busiest, 'tasks started in the busiest window of perMs').toBeLessThanOrEqual(RATE.max + 1);
      expect(starts.at(-1)! - starts[0]!, 'the 40 tasks took at least three windows').toBeGreaterThanOrEqual(2.5 * RATE.perMs);
    } finally {
      await queue.close();
    }
  });

  it('is shown with the agent type', async () => {
    const types = await json(fetch(`${api.url}/v1/agent-types`));
    expect(types[0].limits).toEqual({ ratePerPool: RATE });
  });
});
