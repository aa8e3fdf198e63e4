/**
 * An agent type's rates, shared by its agents through token buckets in Redis: per pool (three agents
 * of one pool together start no more than the rate allows), per type (across two pools), per
 * concurrency key (one key's rate does not slow another key); and a handler's RetryAfterError, which
 * holds its whole pool. The pool listing, the agent types and the metrics show them.
 */
import { Queue, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { RetryAfterError } from '../../src/model/errors.ts';
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
const TYPE_RATE = { max: 10, perMs: 1000 };
const shared = defineAgentType({ name: 'shared', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({}), limits: { ratePerType: TYPE_RATE } });
const sharedWorker = defineWorker(shared, async () => ({}));
const KEY_RATE = { max: 5, perMs: 1000 };
const merchant = defineAgentType({ name: 'merchant', version: '1.0.0', payload: z.object({ m: z.string() }), result: z.object({}), limits: { ratePerKey: KEY_RATE } });
const merchantWorker = defineWorker(merchant, async () => ({}));
const HOLD_MS = 1500;
const downstream = defineAgentType({ name: 'downstream', version: '1.0.0', payload: z.object({ busy: z.boolean() }), result: z.object({}), defaults: { attempts: 3 } });
const downstreamWorker = defineWorker(downstream, async (p, ctx) => {
  if (p.busy && ctx.attempt === 1) throw new RetryAfterError(HOLD_MS, 'downstream says 429');
  return {};
});

const { prefix, redis } = useRedisPrefix('rate-per-pool');
let api: ApiServer;
const agents: Agent[] = [];

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0 });
  const start = (definition: Parameters<typeof Agent.start>[0]['definition'], pool?: string) =>
    Agent.start({ definition, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10, ...(pool ? { pool } : {}) });
  for (let i = 0; i < 3; i++) agents.push(await start(meteredWorker));
  agents.push(await start(sharedWorker, 'p1'), await start(sharedWorker, 'p2'), await start(merchantWorker), await start(downstreamWorker), await start(downstreamWorker));
  api = await startApi({ config, catalogue: new Catalogue([metered, shared, merchant, downstream]), redisUrl: REDIS_URL, log: silentLog });
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
    expect(types.find((t: { name: string }) => t.name === 'metered').limits).toEqual({ ratePerPool: RATE });
  });
});

const enqueue = (tasks: unknown[]) =>
  fetch(`${api.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) }).then((r) => {
    expect(r.status).toBe(202);
  });

/** The completed jobs of a pool, once `n` are; the most that started within any window of `perMs`. */
async function startsOf(type: string, pool: string, n: number): Promise<Job[]> {
  const queue = new Queue(queueName({ type, pool }), { connection: redis, prefix });
  try {
    await waitFor(async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= n, { timeoutMs: 20_000, what: `${n} ${type} tasks completed in ${pool}` });
    return await queue.getJobs(['completed'], 0, -1);
  } finally {
    await queue.close();
  }
}
const busiest = (starts: number[], perMs: number) => Math.max(...starts.map((t) => starts.filter((s) => s >= t && s < t + perMs).length));

describe('rate per type', () => {
  it('holds across the pools of the type', async () => {
    await enqueue(Array.from({ length: 30 }, (_, i) => ({ type: 'shared', payload: { i }, pool: i % 2 ? 'p1' : 'p2' })));
    const jobs = [...(await startsOf('shared', 'p1', 15)), ...(await startsOf('shared', 'p2', 15))];
    const starts = jobs.map((j) => j.processedOn!).sort((a, b) => a - b);
    expect(busiest(starts, TYPE_RATE.perMs), 'tasks of both pools started in the busiest second').toBeLessThanOrEqual(TYPE_RATE.max + 1);
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(1.5 * TYPE_RATE.perMs);
  });
});

describe('rate per key', () => {
  it("holds per concurrency key, puts a task off without spending or starting an attempt, and does not slow another key", async () => {
    await enqueue(Array.from({ length: 24 }, (_, i) => ({ type: 'merchant', payload: { m: i < 20 ? 'big' : 'small' }, concurrencyKey: i < 20 ? 'big' : 'small' })));
    const jobs = await startsOf('merchant', 'default', 24);
    const startsOfKey = (m: string) => jobs.filter((j) => j.data.payload.m === m).map((j) => j.processedOn!).sort((a, b) => a - b);
    expect(busiest(startsOfKey('big'), KEY_RATE.perMs)).toBeLessThanOrEqual(KEY_RATE.max + 1);
    expect(startsOfKey('big').at(-1)! - startsOfKey('big')[0]!).toBeGreaterThanOrEqual(2 * KEY_RATE.perMs);
    // small's four fit its own bucket: they do not wait behind big's.
    expect(startsOfKey('small').at(-1)! - startsOfKey('small')[0]!).toBeLessThan(KEY_RATE.perMs);
    for (const j of jobs) expect({ made: j.attemptsMade, started: j.attemptsStarted }).toEqual({ made: 1, started: 1 });
    // Each task without a token gets its key's next one reserved: put off once, not again and again
    // (at 5/s, bursts of 1: all but the first of each key, 19 + 3).
    const putOff = await waitFor(async () => {
      const m = /switchyard_tasks_limited_total\{type="merchant",[^}]*limit="key-rate"\} (\d+)/.exec(await fetch(`${api.url}/metrics`).then((r) => r.text()));
      return m ? Number(m[1]) : undefined;
    }, { what: 'the key-rate metric' });
    expect(putOff).toBeGreaterThanOrEqual(22);
    expect(putOff).toBeLessThanOrEqual(24);
  });
});

describe('RetryAfterError', () => {
  it("holds the handler's whole pool for the time asked, shown in the pool listing and the metrics", async () => {
    await enqueue([{ type: 'downstream', payload: { busy: true } }]);
    const seen = Date.now();
    const pool = await waitFor(async () => {
      const [p] = await json(fetch(`${api.url}/v1/pools?type=downstream`));
      return p.heldForMs > 0 ? p : undefined;
    }, { what: 'the downstream pool to be held' });
    expect(pool.heldForMs).toBeLessThanOrEqual(HOLD_MS);
    const holdEnds = seen + pool.heldForMs;
    await enqueue(Array.from({ length: 6 }, () => ({ type: 'downstream', payload: { busy: false } })));
    const jobs = await startsOf('downstream', 'default', 7);
    // Nothing else starts in the pool (two agents) until the hold ends; the busy task retries after it too.
    for (const j of jobs) expect(j.processedOn! - holdEnds, `task started ${j.processedOn! - holdEnds} ms after the hold's end`).toBeGreaterThanOrEqual(-50);
    const metrics = await fetch(`${api.url}/metrics`).then((r) => r.text());
    await waitFor(async () => /switchyard_tasks_limited_total\{[^}]*limit="retry-after"[^}]*\} [1-9]/.test(await fetch(`${api.url}/metrics`).then((r) => r.text())), { what: 'the retry-after metric' }).catch(() => {
      throw new Error(`no retry-after count in:\n${metrics.split('\n').filter((l) => l.includes('limited')).join('\n')}`);
    });
  });
});
