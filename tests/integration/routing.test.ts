import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { SharedBreaker } from '../../src/breaker/breaker.ts';
import { BreakerWatch } from '../../src/breaker/watch.ts';
import { BREAKER_PRESETS } from '../../src/model/breaker-policy.ts';
import { poolBreakerName } from '../../src/model/names.ts';
import { Registry } from '../../src/registry/registry.ts';
import type { Registration } from '../../src/model/agent-record.ts';
import { Dispatcher } from '../../src/routing/dispatcher.ts';
import { FleetRouter, PROBE_ROUTE_TTL_MS } from '../../src/routing/router.ts';
import { FleetSnapshot } from '../../src/routing/snapshot.ts';
import { TaskLookup } from '../../src/task/lookup.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import demoTypes from '../../queues/index.ts';
import flakyWorker from '../../workers/flaky.ts';
import { connectRedis, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('routing');
const config = testConfig(prefix);
const catalogue = new Catalogue(demoTypes);
const subscriber = connectRedis();
const registry = new Registry(redis, prefix);
const queues = new PoolQueues(redis, prefix);
const watch = new BreakerWatch(redis, subscriber, prefix, () => BREAKER_PRESETS.batch, 200);
const snapshot = new FleetSnapshot(registry, queues, watch, subscriber, prefix, silentLog, 100);
const router = new FleetRouter(snapshot, catalogue);
const producer = new TaskProducer({ redis, queues, catalogue, router, config, backlog: (t) => snapshot.backlog(t) });
const lookup = new TaskLookup(queues, catalogue, redis, config.prefix, registry);
const timing = { heartbeatMs: 60_000, ttlMs: 180_000 }; // fake agents stay alive for the whole file

async function fakeAgent(id: string, over: Partial<Registration>, health: 'HEALTHY' | 'DEGRADED' | 'UNHEALTHY' = 'HEALTHY') {
  await registry.register({ id, type: 'transform', version: '1.3.0', capabilities: [{ name: 'transform', version: '1.3.0' }], ...over }, timing);
  await registry.heartbeat(id, { health, running: 0 }, timing);
}
const refreshed = () => snapshot.refresh();
const split = (n: number, req: Parameters<FleetRouter['route']>[0]) => {
  const t: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = router.route(req);
    t[d.pool] = (t[d.pool] ?? 0) + 1;
  }
  return t;
};

beforeAll(async () => {
  await waitFor(() => redis.status === 'ready');
  await watch.start();
  await snapshot.start();
});
afterAll(async () => {
  await snapshot.stop();
  await watch.stop();
  await queues.close();
  await subscriber.quit();
});

describe('routing on a live snapshot', () => {
  it('weighted: 10 : 1 over 10 000 tasks lands within ±1 % of 90.9 % / 9.1 %', async () => {
    await fakeAgent('premium-1', { pool: 'premium', weight: 6 });
    await fakeAgent('premium-2', { pool: 'premium', weight: 4 });
    await fakeAgent('standard-1', { pool: 'standard', weight: 1 });
    await refreshed();
    const t = split(10_000, { type: 'transform' });
    expect(Math.abs(t.premium! / 10_000 - 10 / 11)).toBeLessThan(0.01);
    expect(Math.abs(t.standard! / 10_000 - 1 / 11)).toBeLessThan(0.01);
    const d = router.route({ type: 'transform' });
    expect(d).toMatchObject({ strategy: 'weighted', candidates: ['premium', 'standard'], reason: 'weighted over 2 eligible pools' });
  });

  it('DEGRADED agents count half', async () => {
    await registry.heartbeat('premium-1', { health: 'DEGRADED', running: 0 }, timing);
    await refreshed();
    const t = split(8_000, { type: 'transform' }); // premium 3 + 4 = 7, standard 1
    expect(Math.abs(t.premium! / 8_000 - 7 / 8)).toBeLessThan(0.01);
    await registry.heartbeat('premium-1', { health: 'HEALTHY', running: 0 }, timing);
  });

  it('round-robin is an exact rotation; random reaches every pool', async () => {
    await refreshed();
    expect(Array.from({ length: 6 }, () => router.route({ type: 'transform', strategy: 'round-robin' }).pool)).toEqual(['premium', 'standard', 'premium', 'standard', 'premium', 'standard']);
    expect(Object.keys(split(200, { type: 'transform', strategy: 'random' })).sort()).toEqual(['premium', 'standard']);
  });

  it('least-loaded sends work away from a backed-up pool', async () => {
    const q = await queues.forWriting({ type: 'transform', pool: 'premium' });
    await q.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: 'transform', data: { i }, opts: { jobId: `transform~backlog${i}` } })));
    await refreshed();
    const t = split(100, { type: 'transform', strategy: 'least-loaded' });
    expect(t.standard).toBe(100); // 300 waiting over concurrency 2 vs 0 over 1
    await q.obliterate({ force: true });
    await refreshed();
  });

  it('honours the task pool, tags and version range', async () => {
    await fakeAgent('gpu-1', { pool: 'gpu', tags: ['gpu', 'eu'], version: '2.1.0', capabilities: [{ name: 'transform', version: '2.1.0' }] });
    await refreshed();
    expect(split(50, { type: 'transform', tags: ['gpu'] })).toEqual({ gpu: 50 });
    expect(split(50, { type: 'transform', version: '^2' })).toEqual({ gpu: 50 });
    expect(split(50, { type: 'transform', pool: 'standard' })).toEqual({ standard: 50 });
    const none = router.route({ type: 'transform', tags: ['gpu', 'us'] });
    expect(none.pool).toBe('_parked');
    expect(none.reason).toMatch(/gpu: no serving agent with tags gpu,us/);
    await registry.deregister('gpu-1');
  });

  it('an UNHEALTHY pool, a draining pool and an OPEN pool get nothing', async () => {
    await registry.heartbeat('standard-1', { health: 'UNHEALTHY', running: 0 }, timing);
    await refreshed();
    expect(split(100, { type: 'transform' })).toEqual({ premium: 100 });
    await registry.heartbeat('standard-1', { health: 'HEALTHY', running: 0 }, timing);
    await registry.drain('premium-1');
    await registry.drain('premium-2');
    await refreshed();
    expect(split(100, { type: 'transform' })).toEqual({ standard: 100 });

    const breaker = new SharedBreaker(redis, prefix, poolBreakerName({ type: 'transform', pool: 'standard' }), { failureRatio: 0.5, minRequests: 2, windowMs: 10_000, openMs: 60_000, halfOpenProbes: 1 });
    await breaker.record(0, 2);
    await waitFor(() => watch.state(breaker.name) === 'OPEN', { what: 'the watch to see the breaker open' });
    const d = router.route({ type: 'transform' });
    expect(d.pool).toBe('_parked');
    expect(d.reason).toMatch(/premium: every serving agent is draining.*standard: breaker OPEN until/);

    // Past its open time the pool gets probes up to its budget, then nothing; a probe that made no
    // transition within PROBE_ROUTE_TTL_MS (moved away, lost) frees its place, so the pool is never parked for good.
    const later = Date.now() + 61_000;
    const budget = catalogue.get('transform').breaker.halfOpenProbes;
    for (let i = 0; i < budget; i++) expect(router.route({ type: 'transform' }, later)).toMatchObject({ pool: 'standard', reason: expect.stringMatching(/a half-open probe/) });
    expect(router.route({ type: 'transform' }, later + 1)).toMatchObject({ pool: '_parked', reason: expect.stringMatching(/probe budget in use/) });
    expect(router.route({ type: 'transform' }, later + PROBE_ROUTE_TTL_MS + 1).pool).toBe('standard');
    await breaker.reset();
    await waitFor(() => watch.state(breaker.name) === 'CLOSED');
  });

  it('answers 429 once a type has SWITCHYARD_MAX_BACKLOG tasks waiting', async () => {
    const small = new TaskProducer({ redis, queues, catalogue, router, config: { ...config, maxBacklog: 3 }, backlog: (t) => snapshot.backlog(t) });
    await small.enqueueBatch([{ type: 'echo', payload: {} }, { type: 'echo', payload: {} }]);
    await refreshed();
    await expect(small.enqueueBatch([{ type: 'echo', payload: {} }, { type: 'echo', payload: {} }])).rejects.toMatchObject({ code: 'BACKLOG_FULL' });
    await expect(small.enqueue({ type: 'echo', payload: {} })).resolves.toMatchObject({ created: true });
  });

  it('moves the waiting tasks of a pool that lost all its agents to the eligible pools, keeping pinned ones', async () => {
    await fakeAgent('lonely-1', { type: 'echo', pool: 'lonely', capabilities: [{ name: 'echo', version: '1.0.0' }] });
    await fakeAgent('steady-1', { type: 'echo', pool: 'steady', capabilities: [{ name: 'echo', version: '1.0.0' }] });
    await refreshed();
    const lonely = await queues.forWriting({ type: 'echo', pool: 'lonely' });
    const routed = await producer.enqueueBatch(Array.from({ length: 20 }, () => ({ type: 'echo', payload: {} })));
    const inLonely = routed.filter((r) => r.task.pool === 'lonely').map((r) => r.task.id);
    const { task: pinned } = await producer.enqueue({ type: 'echo', payload: {}, pool: 'lonely' });
    expect(inLonely.length).toBeGreaterThan(0);

    await registry.deregister('lonely-1');
    await refreshed();
    const dispatcher = new Dispatcher({ queues, router, snapshot, catalogue, log: silentLog, graceMs: 200 });
    await dispatcher.run(); // notes the pool as ineligible
    await new Promise((r) => setTimeout(r, 250));
    await dispatcher.run(Date.now()); // past the grace: moves
    for (const id of inLonely) expect(await lookup.find(id)).toMatchObject({ pool: 'steady', state: 'waiting', routing: { reason: expect.stringMatching(/^re-routed from lonely/) } });
    expect((await lookup.find(pinned.id))!.pool).toBe('lonely'); // it asked for that pool: it waits there
    expect(await lonely.getWaitingCount()).toBe(1);
  });

  it('a parked task runs when the first agent of its type arrives', async () => {
    const dispatcher = new Dispatcher({ queues, router, snapshot, catalogue, log: silentLog, graceMs: 10_000 });
    const { task } = await producer.enqueue({ type: 'flaky', payload: {} });
    expect(task.state).toBe('parked');
    const agent = await Agent.start({ definition: flakyWorker, redisUrl: REDIS_URL, config, log: silentLog, pool: 'arrival' });
    try {
      await waitFor(async () => {
        await refreshed();
        await dispatcher.run();
        return (await lookup.find(task.id))?.state === 'completed';
      }, { what: 'the parked task to be routed and run' });
      expect(await lookup.find(task.id)).toMatchObject({ pool: 'arrival', routing: { pool: 'arrival' } });
    } finally {
      await agent.close(0);
    }
  });
});
