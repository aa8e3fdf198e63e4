/**
 * The engine's crash repairs, with real Redis and a real agent: an engine that is not listening
 * (as if it had died) leaves work undone, and the sweep redoes exactly the missing step.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { queueName } from '../../src/model/names.ts';
import { fixedRouter } from '../../src/routing/fixed.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import { nodeJobId } from '../../src/model/task-id.ts';
import { WorkflowEngine } from '../../src/workflow/engine.ts';
import { WorkflowRuns } from '../../src/workflow/runs.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { ledger, step, stepWorker } from '../support/workflow-types.ts';

const { prefix } = useRedisPrefix('wf-repair');
const config = testConfig(prefix);
const redis = createRedis(REDIS_URL, 'client');
const catalogue = new Catalogue([step]);
const queues = new PoolQueues(redis, prefix);
const producer = new TaskProducer({ redis, queues, catalogue, router: fixedRouter, config });
// Never started: it hears no wake-ups, as if the process that would have acted had crashed.
const engine = new WorkflowEngine({ redis, subscriber: redis, queues, producer, catalogue, prefix, keepRunsS: 60, log: silentLog });
const runs = new WorkflowRuns({ redis, prefix, catalogue, engine, maxNodes: 100, idempotencyTtlS: 60, keepRunsS: 60 });
let agent: Agent;

beforeAll(async () => {
  agent = await Agent.start({ definition: stepWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10 });
});

afterAll(async () => {
  await agent.close(0);
  await Promise.all([runs.close(), engine.stop(), queues.close()]);
  redis.disconnect();
});

const stateOf = async (id: string) => (await engine.store.meta(id))?.state;
const nodeState = async (id: string, node: string) => (await engine.store.record(id))!.states.get(node);
const chain = [
  { id: 'a', type: 'step', payload: {} },
  { id: 'b', type: 'step', payload: {}, dependsOn: ['a'] },
];

describe('sweep repairs', () => {
  it('enqueues dependents that a node readied while no engine listened', async () => {
    const { run } = await runs.start({ nodes: chain });
    await waitFor(async () => (await nodeState(run.id, 'a')) === 'done', { what: 'a done' });
    expect(await nodeState(run.id, 'b')).toBe('ready'); // nobody acted on the wake-up
    await engine.sweep(Date.now() + 10_000);
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { what: 'run completed after the sweep' });
    expect(ledger.filter((e) => e.run === run.id).map((e) => e.node)).toEqual(['a', 'b']);
  });

  it('adds a node that was claimed but whose job was never added (crash between claim and add)', async () => {
    const { run } = await runs.start({ nodes: chain });
    await waitFor(async () => (await nodeState(run.id, 'a')) === 'done', { what: 'a done' });
    // The crash: b is claimed for the default pool, and its job is never added.
    expect(await engine.store.claim(run.id, 'node', new Map([['b', { pool: 'default' }]]))).toEqual(['b']);
    const now = Date.now() + 10_000;
    await engine.sweep(now); // first look: the job is missing; remembered, not acted on (a move may be under way)
    expect(await nodeState(run.id, 'b')).toBe('queued');
    await engine.sweep(now + 6_000); // still missing past the grace: added again
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { what: 'run completed after the repair' });
    expect(ledger.filter((e) => e.run === run.id).map((e) => e.node)).toEqual(['a', 'b']);
    const q = new Queue(queueName({ type: 'step', pool: 'default' }), { connection: redis, prefix });
    expect(await q.getJobState(nodeJobId(run.id, 'b'))).toBe('completed');
    await q.close();
  });

  it('settles a node whose job finished but whose settle was lost', async () => {
    const { run } = await runs.start({ nodes: [{ id: 'x', type: 'step', payload: { ms: 300 } }] });
    const q = new Queue(queueName({ type: 'step', pool: 'default' }), { connection: redis, prefix });
    // Pretend the agent's settle never happened: mark the node queued again after it settled.
    await waitFor(async () => (await nodeState(run.id, 'x')) === 'done', { what: 'x done' });
    const base = engine.store.key(run.id);
    await redis.multi().hset(`${base}:state`, 'x', 'queued').hset(base, 'state', 'running', 'done', 0, 'inflight', 1).hdel(`${base}:results`, 'x').exec();
    await engine.sweep(Date.now() + 10_000);
    await waitFor(async () => (await stateOf(run.id)) === 'completed', { what: 'run completed from the job result' });
    expect((await engine.store.record(run.id))!.results.get('x')).toEqual({ node: 'x', saw: [] });
    await q.close();
  });
});
