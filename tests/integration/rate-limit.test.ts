import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import demoTypes from '../../queues/index.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { json } from '../support/http.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('rate-limit');
// Two API processes' worth of servers on one Redis: the limit must hold across them.
const apis: ApiServer[] = [];
const RATE = 2;
const BURST = 6;

beforeAll(async () => {
  const catalogue = new Catalogue(demoTypes);
  for (let i = 0; i < 2; i++) {
    const config = testConfig(prefix, { port: 0, apiKeys: ['alpha', 'beta'], rateLimit: { perSecond: RATE, burst: BURST } });
    apis.push(await startApi({ config, catalogue, redisUrl: REDIS_URL, log: silentLog }));
  }
});
afterAll(async () => {
  await Promise.all(apis.map((a) => a.close()));
});

const post = (api: ApiServer, key: string, path: string, body: unknown) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
const task = { type: 'echo', payload: { message: 'hi' } };
const jobKeys = async () => (await keysMatching(redis, `${prefix}:{*}:echo~*`)).length;

describe('per-client rate limit on enqueue routes', () => {
  it('admits a burst across both API processes, then answers 429 with the exact Retry-After, enqueuing nothing', async () => {
    const statuses: number[] = [];
    const limited: Response[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await post(apis[i % 2]!, 'alpha', '/v1/tasks', task);
      statuses.push(res.status);
      if (res.status === 429) limited.push(res);
      else await res.body?.cancel();
    }
    const accepted = statuses.filter((s) => s === 202).length;
    // 6 at once, plus at most one more if the 12 requests took longer than half a second (2/s refill).
    expect(accepted, statuses.join(',')).toBeGreaterThanOrEqual(BURST);
    expect(accepted, statuses.join(',')).toBeLessThanOrEqual(BURST + 1);
    expect(statuses.filter((s) => s !== 202 && s !== 429)).toEqual([]);
    const first = limited[0]!;
    expect(first.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(first.headers.get('retry-after'))).toBe(1); // one task at 2/s fits within a second
    expect(await json(first)).toMatchObject({ status: 429, type: '/problems/rate-limited', detail: expect.stringMatching(/at most 2 tasks per second per client/) });
    await Promise.all(limited.slice(1).map((r) => r.body?.cancel()));
    expect(await jobKeys()).toBe(accepted);
  });

  it('keeps clients apart: another key has its own allowance', async () => {
    const res = await post(apis[0]!, 'beta', '/v1/tasks', task);
    expect(res.status).toBe(202);
  });

  it('counts a batch by its tasks, and refuses a batch larger than the burst with 413', async () => {
    const tooBig = await post(apis[1]!, 'beta', '/v1/tasks/batch', { tasks: Array.from({ length: BURST + 1 }, () => task) });
    expect(tooBig.status).toBe(413);
    expect((await json(tooBig)).detail).toMatch(/split it into requests of at most 6/);
    // beta spent 1 of 6: a batch of 5 fits; a full burst right after does not (it needs 3 s of refill).
    expect((await post(apis[1]!, 'beta', '/v1/tasks/batch', { tasks: Array.from({ length: 5 }, () => task) })).status).toBe(202);
    const over = await post(apis[0]!, 'beta', '/v1/tasks/batch', { tasks: Array.from({ length: BURST }, () => task) });
    expect(over.status).toBe(429);
  });

  it('admits the client again once its Retry-After has passed', async () => {
    const res = await post(apis[0]!, 'alpha', '/v1/tasks', task);
    const wait = res.status === 429 ? Number(res.headers.get('retry-after')) : 0;
    await res.body?.cancel();
    const since = Date.now();
    await waitFor(async () => (await post(apis[1]!, 'alpha', '/v1/tasks', task)).status === 202, { what: 'alpha admitted again', timeoutMs: 5000, intervalMs: 100 });
    expect(Date.now() - since).toBeLessThanOrEqual(wait * 1000 + 1000);
  });
});
