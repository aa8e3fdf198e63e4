/**
 * The fleet through real processes: agents in pools report health from their real health-check
 * input (a downstream HTTP service the test controls), stop pulling while UNHEALTHY, and vanish
 * from the registry when killed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json } from '../support/http.ts';
import { fastFleetEnv, startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-fleet');
const env = fastFleetEnv(prefix, { SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_STALLED_INTERVAL_MS: '1000' });

// The downstream each agent's health check probes: /<name> answers 200 or 503 as the test says.
const down = new Set<string>();
let downstream: Server;
let base = '';
let api: ApiProcess;
let blue1: Spawned;
let blue2: Spawned;
let green: Spawned;

interface AgentBody { id: string; pool: string; health: string; draining: boolean; tags: string[]; weight: number; concurrency: number; pid: number }
interface PoolBody { name: string; eligible: boolean; reasons: string[]; agents: Record<string, number>; weight: number; backlog: { waiting: number } }

const agents = async (query = ''): Promise<AgentBody[]> => json(fetch(`${api.url}/v1/agents${query}`));
const pools = async (): Promise<PoolBody[]> => json(fetch(`${api.url}/v1/pools`));
const agentOf = async (spawned: Spawned) => (await agents()).find((a) => a.pid === spawned.proc.pid);
const enqueue = async (pool: string, payload: object = {}) => {
  const res = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'flaky', payload, pool }) });
  expect(res.status).toBe(202);
  return ((await json(res)) as { id: string }).id;
};
const task = async (id: string) => json(fetch(`${api.url}/v1/tasks/${id}`));

beforeAll(async () => {
  downstream = createServer((req, res) => {
    res.statusCode = down.has(req.url!.slice(1)) ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => downstream.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(downstream.address() as AddressInfo).port}`;
  const agentEnv = (name: string) => ({ ...env, FLAKY_HEALTH_URL: `${base}/${name}` });
  [api, blue1, blue2, green] = await Promise.all([
    startApiProcess(env),
    startAgentProcess('flaky', agentEnv('blue1'), ['--pool', 'blue', '--weight', '10', '--tags', 'eu,gpu', '--concurrency', '4']),
    startAgentProcess('flaky', agentEnv('blue2'), ['--pool', 'blue', '--weight', '10', '--tags', 'eu', '--concurrency', '4']),
    startAgentProcess('flaky', agentEnv('green'), ['--pool', 'green', '--tags', 'us']),
  ]);
});
afterAll(() => new Promise<void>((r) => downstream.close(() => r())));

describe('a fleet of real agent processes', () => {
  it('lists agents with their pool, weight, tags and health, filtered', async () => {
    await waitFor(async () => (await agents('?type=flaky&health=HEALTHY')).length === 3, { what: 'three healthy agents' });
    expect((await agents('?pool=blue')).map((a) => a.pid).sort()).toEqual([blue1.proc.pid, blue2.proc.pid].sort());
    expect((await agents('?tag=eu,gpu')).map((a) => a.pid)).toEqual([blue1.proc.pid]);
    expect((await agents('?tag=eu&tag=gpu')).map((a) => a.pid)).toEqual([blue1.proc.pid]);
    expect((await agents('?capability=flaky@^1.0')).length).toBe(3);
    expect((await agents('?capability=flaky@^2')).length).toBe(0);
    expect(await agentOf(blue1)).toMatchObject({ pool: 'blue', weight: 10, concurrency: 4, tags: ['eu', 'gpu'], draining: false });
    const bad = await fetch(`${api.url}/v1/agents?health=SICK`);
    expect(bad.status).toBe(400);
    expect((await json(bad)).errors[0].path).toMatch(/^health/);
  });

  it('shows pools with agents by health, weight and eligibility', async () => {
    const p = await pools();
    expect(p.find((x) => x.name === 'flaky.blue')).toMatchObject({ eligible: true, weight: 20, agents: { HEALTHY: 2, total: 2 } });
    expect(p.find((x) => x.name === 'flaky.green')).toMatchObject({ eligible: true, weight: 1 });
  });

  it('an agent whose health check fails stops pulling while the other agent of its pool drains the queue', async () => {
    down.add('blue2');
    await waitFor(async () => (await agentOf(blue2))?.health === 'UNHEALTHY', { what: 'blue2 UNHEALTHY' });
    const blue2Id = (await agentOf(blue2))!.id;
    const ids = await Promise.all(Array.from({ length: 20 }, () => enqueue('blue', { latencyMs: 20 })));
    const done = await waitFor(async () => {
      const views = await Promise.all(ids.map(task));
      return views.every((v) => v.state === 'completed') ? views : undefined;
    }, { what: 'all 20 blue tasks completed' });
    expect(done.filter((v) => v.agent === blue2Id)).toEqual([]);
    expect((await pools()).find((x) => x.name === 'flaky.blue')).toMatchObject({ eligible: true, weight: 10, agents: { HEALTHY: 1, UNHEALTHY: 1 } });
  });

  it('a task pinned to a pool with no healthy agent is parked (GET says why) and runs once the agent recovers', async () => {
    down.add('green');
    await waitFor(async () => (await agentOf(green))?.health === 'UNHEALTHY', { what: 'green UNHEALTHY' });
    const p = (await pools()).find((x) => x.name === 'flaky.green')!;
    expect(p.eligible).toBe(false);
    expect(p.reasons[0]).toMatch(/no HEALTHY or DEGRADED agent \(1 UNHEALTHY\)/);
    // Routers see the change within a snapshot refresh; a task sent just before may still land in green.
    const sent: string[] = [];
    const parked = await waitFor(async () => {
      const id = await enqueue('green');
      sent.push(id);
      const t = await task(id);
      return t.state === 'parked' ? t : undefined;
    }, { what: 'a task for green to be parked' });
    const id = parked.id;
    expect(parked.state).toBe('parked');
    expect(parked.note).toMatch(/no eligible pool \(green: no HEALTHY or DEGRADED agent \(1 UNHEALTHY\)\)/);
    down.delete('green');
    for (const t of sent) await waitFor(async () => (await task(t)).state === 'completed', { what: 'the green tasks after recovery' });
    down.delete('blue2');
    await waitFor(async () => (await agentOf(blue2))?.health === 'HEALTHY', { what: 'blue2 healthy again' });
  });

  it('accepts a task for a pool with no agent at all, parks it, and says so', async () => {
    const id = await enqueue('nobody');
    expect(await task(id)).toMatchObject({ state: 'parked', note: expect.stringMatching(/nobody: no live agent/) });
  });

  it('drains an agent on request', async () => {
    const target = (await agentOf(blue1))!;
    const res = await fetch(`${api.url}/v1/agents/${target.id}/drain`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect((await json(res)).draining).toBe(true);
    expect((await fetch(`${api.url}/v1/agents/nope/drain`, { method: 'POST' })).status).toBe(404);
    await waitFor(() => blue1.output().includes('drain requested'), { what: 'the agent to hear of it' });
    expect((await agentOf(blue1))!.draining).toBe(true);
  });

  it('a killed agent turns UNKNOWN, then disappears', async () => {
    const pid = green.proc.pid;
    await green.kill('SIGKILL');
    await waitFor(async () => (await agents()).find((a) => a.pid === pid)?.health === 'UNKNOWN', { intervalMs: 25, what: 'the killed agent to read UNKNOWN' });
    await waitFor(async () => !(await agents()).some((a) => a.pid === pid), { what: 'the killed agent to be removed' });
  });
});
