/**
 * Issue scenario, with real processes: three pools of one type; one pool's downstream starts
 * failing every task. Its breaker opens within a few tasks, new tasks go elsewhere, nothing is
 * lost, and once the downstream is fixed a probe closes the breaker and the pool gets work again.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json } from '../support/http.ts';
import { fastFleetEnv, startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-breaker');
const env = fastFleetEnv(prefix, { FLAKY_BREAKER_OPEN_MS: '1500', SWITCHYARD_REROUTE_GRACE_MS: '500' });
const failing = new Set<string>();
let downstream: Server;
let api: ApiProcess;

interface TaskBody { id: string; state: string; pool: string; attempts: { made: number }; routing: { pool: string; candidates: string[] } }
const enqueue = async (n: number): Promise<TaskBody[]> => {
  const res = await fetch(`${api.url}/v1/tasks/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tasks: Array.from({ length: n }, () => ({ type: 'flaky', payload: {}, attempts: 6, backoff: { delayMs: 100 } })) }),
  });
  expect(res.status).toBe(202);
  return (await json(res)).tasks;
};
const get = (id: string): Promise<TaskBody> => json(fetch(`${api.url}/v1/tasks/${id}`));
const breaker = async (pool: string) => ((await json(fetch(`${api.url}/v1/breakers`))) as Array<{ name: string; state: string; trips: number }>).find((b) => b.name === `pool:flaky.${pool}`);
const allDone = (ids: string[]) =>
  waitFor(async () => {
    const views = await Promise.all(ids.map(get));
    return views.every((v) => v.state === 'completed') ? views : undefined;
  }, { timeoutMs: 30_000, what: `${ids.length} tasks to complete` });

beforeAll(async () => {
  downstream = createServer((req, res) => {
    res.statusCode = failing.has(req.url!.slice(1)) ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => downstream.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(downstream.address() as AddressInfo).port}`;
  const agent = (pool: string) => startAgentProcess('flaky', { ...env, FLAKY_DOWNSTREAM_URL: `${base}/${pool}` }, ['--pool', pool, '--concurrency', '4']);
  [api] = await Promise.all([startApiProcess(env), agent('red'), agent('green'), agent('blue')]);
  await waitFor(async () => ((await json(fetch(`${api.url}/v1/agents?health=HEALTHY`))) as unknown[]).length === 3, { what: 'three healthy agents' });
  // The registry lists them before the API's routing snapshot has them (a refresh, or the registry's
  // event across a cluster, later): wait until a routed task had all three pools to choose from.
  await waitFor(async () => (await enqueue(1))[0]!.routing.candidates.length === 3, { what: 'the router to see the three pools' });
});
afterAll(() => new Promise<void>((r) => downstream.close(() => r())));

describe('a failing pool is cut off by its breaker, for everyone, and comes back', () => {
  it('spreads work over the three pools while all are well', async () => {
    const done = await allDone((await enqueue(30)).map((t) => t.id));
    expect(new Set(done.map((t) => t.pool))).toEqual(new Set(['red', 'green', 'blue']));
  });

  it('opens the failing pool breaker within a few tasks and routes new work elsewhere, losing nothing', async () => {
    failing.add('red');
    const first = await enqueue(30);
    await waitFor(async () => (await breaker('red'))?.state === 'OPEN', { what: 'the red breaker to open' });
    // The API hears of the transition by pub/sub, a moment after Redis holds it (on a cluster the
    // message crosses the cluster bus): its routing follows from then on.
    const heard = async () => ((await json(fetch(`${api.url}/v1/pools?type=flaky`))) as Array<{ pool: string; breaker: string }>).find((p) => p.pool === 'red')?.breaker === 'OPEN';
    await waitFor(heard, { what: 'the API to hear that the red breaker opened' });
    const after = await enqueue(30);
    expect(after.filter((t) => t.routing.pool === 'red')).toEqual([]);
    const done = await allDone([...first, ...after].map((t) => t.id));
    // Tasks that failed on red were retried and completed somewhere healthy, or on red after it closed: none lost.
    expect(done).toHaveLength(60);
  });

  it('once fixed, a probe closes the breaker and the pool gets work again', async () => {
    failing.delete('red');
    // Traffic keeps flowing; once the open time passes one task is routed to red as a probe.
    const sent: string[] = [];
    await waitFor(async () => {
      sent.push(...(await enqueue(5)).map((t) => t.id));
      return (await breaker('red'))?.state === 'CLOSED';
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'a probe to close the red breaker' });
    expect((await breaker('red'))!.trips).toBeGreaterThanOrEqual(1);
    const done = await allDone([...sent, ...(await enqueue(30)).map((t) => t.id)]);
    expect(done.some((t) => t.pool === 'red')).toBe(true);
  });
});
