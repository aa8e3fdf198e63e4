import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { Registry } from '../../src/registry/registry.ts';
import { keys } from '../../src/redis/keys.ts';
import flakyWorker from '../../workers/flaky.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { producerSystem, silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('agent-health');
const sys = producerSystem(prefix);
const registry = new Registry(redis, prefix);
const config = testConfig(prefix, {
  heartbeatMs: 100,
  agentTtlMs: 400,
  readyTimeoutMs: 3000,
  health: { intervalMs: 50, checkTimeoutMs: 200, degradedMs: 100, unhealthyAfter: 3, emaAlpha: 0.3 },
});
const agents: Agent[] = [];
beforeAll(() => sys.ready);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
});

/** A flaky worker whose health check fails while `down` is set: the test's handle on its health input. */
function controllable(pool: string) {
  const state = { down: false, checks: 0 };
  const definition = defineWorker(flakyWorker.type, flakyWorker.handler, {
    healthCheck: () => {
      state.checks++;
      if (state.down) throw new Error('downstream unreachable');
    },
  });
  return { state, start: async () => pushAgent(await Agent.start({ definition, redisUrl: REDIS_URL, config, log: silentLog, pool, concurrency: 2, tags: ['test'] })) };
}
const pushAgent = (a: Agent) => (agents.push(a), a);
const enqueue = async (pool: string, payload: object = {}) => (await sys.producer.enqueue({ type: 'flaky', payload, pool })).task.id;
const stateOf = async (id: string) => (await sys.lookup.find(id))?.state;

describe('agent health and registry', () => {
  it('registers with its type, pool, weight and tags, and deregisters on close', async () => {
    const { start } = controllable('reg');
    const agent = await start();
    const view = await registry.get(agent.id);
    expect(view).toMatchObject({ type: 'flaky', pool: 'reg', health: 'HEALTHY', tags: ['test'], weight: 1, concurrency: 2, capabilities: [{ name: 'flaky', version: '1.0.0' }] });
    await agent.close();
    expect(await registry.get(agent.id)).toBeUndefined();
  });

  it('ensureReady: pulls nothing until its first health check passes', async () => {
    const c = controllable('late');
    c.state.down = true;
    const id = await enqueue('late');
    const starting = c.start();
    await waitFor(async () => (await registry.list({ type: 'flaky', pool: 'late' }))[0], { what: 'the agent to register' });
    const [registered] = await registry.list({ type: 'flaky', pool: 'late' });
    expect(registered!.health).toBe('UNKNOWN');
    await waitFor(() => c.state.checks >= 4, { what: 'a few failed checks' });
    expect(await stateOf(id)).toBe('waiting');
    c.state.down = false;
    const agent = await starting;
    expect(agent.health).toBe('HEALTHY');
    await waitFor(async () => (await stateOf(id)) === 'completed', { what: 'the task to run once ready' });
  });

  it('ensureReady gives up with a clear error and leaves no record behind', async () => {
    const c = controllable('never');
    c.state.down = true;
    await expect(c.start()).rejects.toThrow(/health check did not pass within 3000 ms.*downstream unreachable/);
    expect(await registry.list({ type: 'flaky', pool: 'never' })).toEqual([]);
  });

  it('pauses while UNHEALTHY (in-flight work finishes) and resumes when healthy again', async () => {
    const c = controllable('sick');
    const agent = await c.start();
    const inflight = await enqueue('sick', { latencyMs: 600 });
    await waitFor(async () => (await stateOf(inflight)) === 'active', { what: 'a task in flight' });
    c.state.down = true;
    await waitFor(() => agent.health === 'UNHEALTHY', { what: 'UNHEALTHY after 3 failed checks' });
    expect(agent.pulling).toBe(false);
    await waitFor(async () => (await registry.get(agent.id))?.health === 'UNHEALTHY', { what: 'the registry to show it' });
    const queued = await enqueue('sick');
    await waitFor(async () => (await stateOf(inflight)) === 'completed', { what: 'the in-flight task to finish' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await stateOf(queued)).toBe('waiting');
    c.state.down = false;
    await waitFor(() => agent.health === 'HEALTHY', { what: 'healthy again' });
    await waitFor(async () => (await stateOf(queued)) === 'completed', { what: 'the queued task once resumed' });
  });

  it('a drained agent finishes what it has and takes nothing new', async () => {
    const c = controllable('drain');
    const agent = await c.start();
    expect(await registry.drain(agent.id)).toMatchObject({ draining: true });
    await waitFor(() => agent.draining && !agent.pulling, { what: 'the agent to learn of the drain' });
    const queued = await enqueue('drain');
    await new Promise((r) => setTimeout(r, 300));
    expect(await stateOf(queued)).toBe('waiting');
  });

  it('registers again when its record expired while it was alive', async () => {
    const c = controllable('again');
    const agent = await c.start();
    await redis.del(keys(prefix).registry.agent(agent.id));
    await waitFor(async () => (await registry.get(agent.id))?.health === 'HEALTHY', { what: 're-registration' });
  });

  it('the housekeeper removes an agent that stopped heartbeating', async () => {
    const c = controllable('house');
    await c.start(); // runs a housekeeper like every agent
    const ghost = { id: 'ghost-1', type: 'flaky', pool: 'house', version: '1.0.0', capabilities: [{ name: 'flaky', version: '1.0.0' }] };
    await registry.register(ghost, { heartbeatMs: 100, ttlMs: 300 });
    await waitFor(async () => (await registry.get('ghost-1')) === undefined, { timeoutMs: 5000, what: 'the ghost to be expired' });
  });
});

// Keep a handle on the queue so a failing test can inspect it.
afterAll(() => new Queue('{flaky.sick}', { connection: redis, prefix }).close());
