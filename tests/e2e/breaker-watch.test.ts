/** Two API processes learn of a breaker transition from Redis pub/sub, quickly and without polling Redis. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedBreaker } from '../../src/breaker/breaker.ts';
import { BREAKER_PRESETS } from '../../src/model/breaker-policy.ts';
import { json } from '../support/http.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { connectRedis, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-watch');
const env = { REDIS_URL, SWITCHYARD_PREFIX: prefix };
let apis: ApiProcess[];
const redis = connectRedis();
afterAll(() => redis.quit());

beforeAll(async () => {
  apis = await Promise.all([startApiProcess(env), startApiProcess(env), startAgentProcess('echo', env)]).then(([a, b]) => [a, b]);
});

/** GET /v1/pools answers from each API's cached breaker state (the watch), not from a Redis read. */
const breakerSeenBy = async (api: ApiProcess) =>
  ((await json(fetch(`${api.url}/v1/pools?type=echo`))) as Array<{ name: string; breaker: string }>).find((p) => p.name === 'echo.default')?.breaker;

describe('breaker transitions reach every API process', () => {
  it('both APIs see OPEN and then CLOSED shortly after the transition', async () => {
    await waitFor(async () => (await breakerSeenBy(apis[0]!)) === 'CLOSED' && (await breakerSeenBy(apis[1]!)) === 'CLOSED', { what: 'both APIs to list the pool' });
    const breaker = new SharedBreaker(redis, prefix, 'pool:echo.default', BREAKER_PRESETS.batch);
    const t0 = Date.now();
    await breaker.record(0, 10);
    const seen = await Promise.all(apis.map((api) => waitFor(async () => ((await breakerSeenBy(api)) === 'OPEN' ? Date.now() - t0 : undefined), { intervalMs: 5, what: 'OPEN' })));
    console.info(`[e2e] two API processes saw OPEN after ${seen.join(' and ')} ms (poll interval 5 ms, each poll an HTTP request)`);
    // Pub/sub delivers in a few ms; the bound is generous for a loaded CI machine.
    for (const ms of seen) expect(ms).toBeLessThan(500);
    await breaker.reset();
    await Promise.all(apis.map((api) => waitFor(async () => (await breakerSeenBy(api)) === 'CLOSED', { intervalMs: 5, timeoutMs: 2000, what: 'CLOSED' })));
  });
});
