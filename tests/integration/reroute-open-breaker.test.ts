/**
 * The retries of a pool whose breaker opened move to an eligible pool within the re-route grace,
 * even when the breaker's open time is no longer than the grace (the tour's case: 10 s and 10 s).
 * They used to wait until the breaker had stayed held for a whole grace, which a breaker that admits
 * probes after openMs <= graceMs never does: they sat through trip after trip (issue 18, item 4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { policyOf } from '../../src/model/catalogue.ts';
import { BreakerWatch } from '../../src/breaker/watch.ts';
import { poolBreakerName } from '../../src/model/names.ts';
import { Registry } from '../../src/registry/registry.ts';
import { Dispatcher } from '../../src/routing/dispatcher.ts';
import { FleetRouter } from '../../src/routing/router.ts';
import { FleetSnapshot } from '../../src/routing/snapshot.ts';
import { TaskLookup } from '../../src/task/lookup.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import { connectRedis, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const OPEN_MS = 3000;
const GRACE_MS = 3000;
/** A dispatcher round, a snapshot refresh, the moved task's run: well under this. */
const MARGIN_MS = 3000;

/** Fails in the `broken` pool (its downstream refuses), succeeds anywhere else. */
const shaky = defineAgentType({
  name: 'shaky',
  version: '1.0.0',
  payload: z.object({ n: z.number().int() }),
  result: z.object({ pool: z.string() }),
  defaults: { attempts: 50, timeoutMs: 5000, backoff: { type: 'fixed', delayMs: 300, jitter: 0 } },
  breaker: { failureRatio: 0.5, minRequests: 3, windowMs: 30_000, openMs: OPEN_MS, halfOpenProbes: 1 },
});
const shakyWorker = defineWorker(shaky, async (_payload, ctx) => {
  if (ctx.pool === 'broken') throw new Error('downstream refused the connection');
  return { pool: ctx.pool };
});

const { prefix, redis } = useRedisPrefix('reroute-open');
const config = testConfig(prefix);
const catalogue = new Catalogue([shaky]);
const subscriber = connectRedis();
const queues = new PoolQueues(redis, prefix);
const watch = new BreakerWatch(redis, subscriber, prefix, (name) => policyOf(catalogue, name), 200);
const snapshot = new FleetSnapshot(new Registry(redis, prefix), queues, watch, subscriber, prefix, silentLog, 100, 200);
const router = new FleetRouter(snapshot, catalogue);
const producer = new TaskProducer({ redis, queues, catalogue, router, config });
const lookup = new TaskLookup(queues, catalogue, redis, prefix);
const dispatcher = new Dispatcher({ queues, router, snapshot, catalogue, log: silentLog, graceMs: GRACE_MS });
const agents: Agent[] = [];
let rounds: NodeJS.Timeout | undefined;

beforeAll(async () => {
  await waitFor(() => redis.status === 'ready');
  await watch.start();
  await snapshot.start();
  // As the housekeeper does it (every heartbeat; more often here so the test measures the rule, not the period).
  const loop = () => {
    rounds = setTimeout(() => void dispatcher.run().catch(() => undefined).finally(loop), 250);
  };
  loop();
});
afterAll(async () => {
  clearTimeout(rounds);
  await Promise.all(agents.map((a) => a.close(0)));
  await dispatcher.close();
  await snapshot.stop();
  await watch.stop();
  await queues.close();
  await subscriber.quit();
});

const startAgent = async (pool: string) => {
  const agent = await Agent.start({ definition: shakyWorker, redisUrl: REDIS_URL, config, log: silentLog, pool });
  agents.push(agent);
  await waitFor(async () => {
    await snapshot.refresh();
    return snapshot.pools('shaky').some((p) => p.pool === pool && p.serving.length > 0);
  }, { what: `the ${pool} agent to serve` });
};

describe('a pool whose breaker opened with retries pending', () => {
  it('loses its retries to an eligible pool within the re-route grace, though its open time is no longer than the grace', async () => {
    await startAgent('broken');
    const ids = (await producer.enqueueBatch(Array.from({ length: 6 }, (_, n) => ({ type: 'shaky', payload: { n } })))).map((r) => r.task.id);
    const breaker = poolBreakerName({ type: 'shaky', pool: 'broken' });
    await waitFor(() => watch.state(breaker) === 'OPEN', { what: 'the broken pool breaker to open' });
    const openedAt = Date.now();
    const pending = await Promise.all(ids.map((id) => lookup.find(id)));
    expect(pending.every((t) => t?.pool === 'broken' && t.state !== 'completed')).toBe(true);

    await startAgent('good');
    const done = await waitFor(async () => {
      const views = await Promise.all(ids.map((id) => lookup.find(id)));
      return views.every((v) => v?.state === 'completed') ? views : undefined;
    }, { timeoutMs: GRACE_MS + MARGIN_MS, intervalMs: 100, what: `every retry to complete elsewhere within ${GRACE_MS} + ${MARGIN_MS} ms of the breaker opening` });
    const took = Date.now() - openedAt;

    for (const view of done) {
      expect(view).toMatchObject({ pool: 'good', result: { pool: 'good' }, routing: { reason: expect.stringMatching(/^re-routed from broken/) } });
    }
    expect(took).toBeLessThan(GRACE_MS + MARGIN_MS);
  }, 30_000);
});
