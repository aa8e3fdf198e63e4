/**
 * Workflows against real Redis and BullMQ: an API and agents in this process, a `step` type whose
 * handler records every execution (node, start, end, the dependencies it saw) in a ledger.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { WORKFLOW_QUEUE } from '../../src/model/names.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { ledger, step, stepWorker } from '../support/workflow-types.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { json } from '../support/http.ts';

const { prefix, redis } = useRedisPrefix('workflow');

let api: ApiServer;
const agents: Agent[] = [];

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0, maxWorkflowNodes: 1500 });
  api = await startApi({ config, catalogue: new Catalogue([step]), redisUrl: REDIS_URL, log: silentLog });
  for (const pool of ['default', 'second']) {
    agents.push(await Agent.start({ definition: stepWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 50, pool }));
  }
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api.close();
});

interface RunBody {
  id: string;
  state: string;
  reason?: string;
  nodes: Array<{ id: string; state: string; pool?: string; result?: { node: string; saw: string[] }; error?: string; attempts?: number; compensation?: { state: string } }>;
  compensations: Array<{ node: string; state: string; error?: string }>;
  progress: { total: number; done: number };
  nodeCounts: Record<string, number>;
  compensationCounts: { done: number; failed: number };
}
const counts = (c: Record<string, number>) => ({ pending: 0, ready: 0, queued: 0, done: 0, dead: 0, skipped: 0, cancelled: 0, ...c });

type Node = { id: string; type?: string; payload?: unknown; dependsOn?: string[]; compensate?: { payload?: unknown } };
const post = (body: unknown) =>
  fetch(`${api.url}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const run = async (nodes: Node[], extra: Record<string, unknown> = {}): Promise<string> => {
  const res = await post({ nodes: nodes.map((n) => ({ type: 'step', payload: {}, ...n })), ...extra });
  const body = (await json(res)) as { id: string };
  expect(res.status, JSON.stringify(body)).toBe(202);
  return body.id;
};
const get = async (id: string) => (await json(fetch(`${api.url}/v1/workflows/${id}`))) as RunBody;
const until = (id: string, states: string[], timeoutMs = 30_000) =>
  waitFor(async () => {
    const r = await get(id);
    return states.includes(r.state) ? r : undefined;
  }, { timeoutMs, intervalMs: 25, what: `run ${id} to reach ${states.join('/')}` });
const executions = (runId: string, undo = false) => ledger.filter((e) => e.run === runId && e.undo === undo);

/** Every node started only after each of its dependencies ended. */
function expectOrder(runId: string, nodes: Node[]): void {
  const byNode = new Map(executions(runId).map((e) => [e.node, e]));
  for (const n of nodes) {
    const e = byNode.get(n.id)!;
    expect(e, `node ${n.id} ran`).toBeDefined();
    for (const d of n.dependsOn ?? []) expect(e.start, `${n.id} started after ${d} ended`).toBeGreaterThanOrEqual(byNode.get(d)!.end);
  }
}

describe('running DAGs', () => {
  it('runs a diamond: the fan-in node starts after both branches and receives both results', async () => {
    const nodes = [
      { id: 'a', payload: { ms: 20 } },
      { id: 'b', dependsOn: ['a'], payload: { ms: 50 } },
      { id: 'c', dependsOn: ['a'], payload: { ms: 10 } },
      { id: 'd', dependsOn: ['b', 'c'] },
    ];
    const id = await run(nodes);
    const done = await until(id, ['completed']);
    expectOrder(id, nodes);
    expect(executions(id)).toHaveLength(4);
    const d = executions(id).find((e) => e.node === 'd')!;
    expect(d.saw).toEqual({ b: { node: 'b', saw: ['a'] }, c: { node: 'c', saw: ['a'] } });
    expect(done.nodes.find((n) => n.id === 'd')).toMatchObject({ state: 'done', result: { node: 'd', saw: ['b', 'c'] }, attempts: 1 });
    expect(done.progress).toEqual({ total: 4, done: 4, running: 0 });
    expect(done.nodeCounts).toEqual(counts({ done: 4 }));
    // The run job in Bull Board's `workflows` queue completes once its nodes are done.
    const runs = new Queue(WORKFLOW_QUEUE, { connection: redis, prefix });
    await waitFor(async () => (await runs.getJobState(id)) === 'completed', { what: 'run job completed' });
    await runs.close();
  });

  it('binds late: a node starts as soon as its own dependency is done, while a sibling branch still runs', async () => {
    const nodes = [
      { id: 'root' },
      { id: 'slow', dependsOn: ['root'], payload: { ms: 1500 } },
      { id: 'fast', dependsOn: ['root'], payload: { ms: 10 } },
      { id: 'after-fast', dependsOn: ['fast'] },
      { id: 'end', dependsOn: ['slow', 'after-fast'] },
    ];
    const id = await run(nodes);
    await until(id, ['completed']);
    expectOrder(id, nodes);
    const at = (n: string) => executions(id).find((e) => e.node === n)!;
    expect(at('after-fast').start).toBeLessThan(at('slow').end);
    // Independent branches run in parallel.
    expect(at('fast').start).toBeLessThan(at('slow').end);
  });

  it('fans out to 50 nodes and back in to one', async () => {
    const mid = Array.from({ length: 50 }, (_, i) => ({ id: `m${i}`, dependsOn: ['src'], payload: { ms: 5 } }));
    const nodes = [{ id: 'src' }, ...mid, { id: 'sink', dependsOn: mid.map((m) => m.id) }];
    const id = await run(nodes);
    await until(id, ['completed']);
    expectOrder(id, nodes);
    expect(Object.keys(executions(id).find((e) => e.node === 'sink')!.saw)).toHaveLength(50);
  });

  it('completes a random 1 000-node DAG, each node once and after all its dependencies', async () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const nodes: Node[] = Array.from({ length: 1000 }, (_, i) => {
      const deps = new Set<string>();
      const k = i === 0 ? 0 : Math.floor(rand() * 4);
      for (let j = 0; j < k; j++) deps.add(`n${Math.floor(rand() * i)}`);
      return { id: `n${i}`, dependsOn: [...deps] };
    });
    const id = await run(nodes);
    const done = await until(id, ['completed'], 60_000);
    expect(done.progress.done).toBe(1000);
    expect(executions(id)).toHaveLength(1000);
    expect(new Set(executions(id).map((e) => e.node)).size).toBe(1000);
    expectOrder(id, nodes);
    // Late binding spreads nodes over both pools.
    expect(new Set(done.nodes.map((n) => n.pool)).size).toBe(2);
  });

  it('returns the same run for the same idempotencyKey', async () => {
    const key = `wf-${Date.now()}`;
    const first = await run([{ id: 'only' }], { idempotencyKey: key });
    const res = await post({ nodes: [{ id: 'only', type: 'step', payload: {} }], idempotencyKey: key });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ id: first, duplicate: true });
    await until(first, ['completed']);
    expect(executions(first)).toHaveLength(1);
  });
});

describe('sagas', () => {
  it('compensates completed nodes in reverse topological order when a node dies', async () => {
    const nodes = [
      { id: 'provision', compensate: {} },
      { id: 'charge', dependsOn: ['provision'], payload: { amount: 10 }, compensate: { payload: { amount: -10 } } },
      { id: 'side', dependsOn: ['provision'], payload: { ms: 5 } }, // no compensation: a no-op step of the undo order
      { id: 'email', dependsOn: ['charge', 'side'], payload: { fail: 'always' } },
      { id: 'never', dependsOn: ['email'], compensate: {} },
    ];
    const id = await run(nodes);
    const end = await until(id, ['compensated']);
    expect(end.reason).toMatch(/node email failed: email failed on attempt 2/);
    expect(end.nodes.map((n) => [n.id, n.state])).toEqual([
      ['provision', 'done'], ['charge', 'done'], ['side', 'done'], ['email', 'dead'], ['never', 'skipped'],
    ]);
    expect(end.nodes.find((n) => n.id === 'email')!.attempts).toBe(2);
    expect(end.compensations.map((c) => [c.node, c.state])).toEqual([['charge', 'done'], ['provision', 'done']]);
    expect(end.nodeCounts).toEqual(counts({ done: 3, dead: 1, skipped: 1 }));
    expect(end.compensationCounts).toEqual({ done: 2, failed: 0 });
    const undos = executions(id, true);
    expect(undos.map((e) => e.node)).toEqual(['charge', 'provision']);
    expect(undos[1]!.start).toBeGreaterThanOrEqual(undos[0]!.end);
    // A compensation receives the result of the node it undoes.
    expect(undos[0]!.saw).toEqual({ charge: { node: 'charge', saw: ['provision'] } });
    // Node jobs are tasks too: readable by id, listed among the dead letters, but not replayable alone.
    const task = (await json(fetch(`${api.url}/v1/tasks/${id}.email`))) as { state: string; type: string; workflow: unknown };
    expect(task).toMatchObject({ state: 'dead', type: 'step', workflow: { runId: id, nodeId: 'email', compensating: false } });
    const undoTask = (await json(fetch(`${api.url}/v1/tasks/${id}.charge.undo`))) as { state: string };
    expect(undoTask.state).toBe('completed');
    const dlq = (await json(fetch(`${api.url}/v1/dlq?type=step`))) as { tasks: Array<{ id: string }> };
    expect(dlq.tasks.map((t) => t.id)).toContain(`${id}.email`);
    const replay = await fetch(`${api.url}/v1/dlq/${id}.email/replay`, { method: 'POST' });
    expect(replay.status).toBe(409);
    expect(((await json(replay)) as { detail: string }).detail).toMatch(/is a workflow node.*start a new run/);
    const runs = new Queue(WORKFLOW_QUEUE, { connection: redis, prefix });
    await waitFor(async () => (await runs.getJobState(id)) === 'failed', { what: 'run job failed' });
    expect((await runs.getJob(id))!.failedReason).toMatch(/^workflow compensated: node email failed/);
    await runs.close();
  });

  it('runs the remaining compensations past one that fails for good', async () => {
    const nodes = [
      { id: 'a', compensate: {} },
      { id: 'b', dependsOn: ['a'], compensate: { payload: { fail: 'fatal' } } },
      { id: 'c', dependsOn: ['b'], payload: { fail: 'fatal' } },
    ];
    const id = await run(nodes);
    const end = await until(id, ['compensation_failed']);
    expect(end.compensations).toMatchObject([
      { node: 'b', state: 'failed', error: 'b failed for good' },
      { node: 'a', state: 'done' },
    ]);
    expect(end.nodes.find((n) => n.id === 'b')!.compensation).toEqual({ type: 'step', state: 'failed' });
    expect(end.compensationCounts).toEqual({ done: 1, failed: 1 });
  });

  it('ends failed when nothing had a compensation', async () => {
    const id = await run([{ id: 'a' }, { id: 'b', dependsOn: ['a'], payload: { fail: 'fatal' } }]);
    const end = await until(id, ['failed']);
    expect(end.compensations).toEqual([]);
  });

  it('cancels: the running node is aborted, nothing new starts, completed nodes are compensated', async () => {
    const nodes = [
      { id: 'a', compensate: {} },
      { id: 'long', dependsOn: ['a'], payload: { ms: 60_000 }, compensate: {} },
      { id: 'later', dependsOn: ['long'] },
    ];
    const id = await run(nodes);
    await waitFor(() => executions(id).some((e) => e.node === 'long'), { what: 'long node started' });
    const res = await fetch(`${api.url}/v1/workflows/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect(((await json(res)) as RunBody).state).toMatch(/^(cancelling|compensating)$/);
    const end = await until(id, ['cancelled']);
    expect(end.nodes.map((n) => [n.id, n.state])).toEqual([['a', 'done'], ['long', 'cancelled'], ['later', 'skipped']]);
    expect(end.nodeCounts).toEqual(counts({ done: 1, cancelled: 1, skipped: 1 }));
    expect(executions(id).find((e) => e.node === 'long')!.outcome).toBe('aborted');
    expect(end.compensations.map((c) => c.node)).toEqual(['a']);
    const again = await fetch(`${api.url}/v1/workflows/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
  });
});

describe('validation', () => {
  const rejects = async (body: unknown, path: string, message: RegExp) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await json(res)) as { detail: string; errors: Array<{ path: string; message: string }> };
    expect(problem.errors).toContainEqual({ path, message: expect.stringMatching(message) });
  };
  const nodes = (...ns: Node[]) => ({ nodes: ns.map((n) => ({ type: 'step', payload: {}, ...n })) });

  it('names duplicate ids, unknown dependencies, cycles, unknown types, bad payloads and size', async () => {
    await rejects(nodes({ id: 'a' }, { id: 'a' }), 'nodes[1].id', /duplicate node id "a" \(also nodes\[0\]\)/);
    await rejects(nodes({ id: 'a', dependsOn: ['ghost'] }), 'nodes[0].dependsOn[0]', /"ghost", which is not a node/);
    await rejects(nodes({ id: 'a', dependsOn: ['c'] }, { id: 'b', dependsOn: ['a'] }, { id: 'c', dependsOn: ['b'] }, { id: 'd' }), 'nodes[0].dependsOn', /^cycle: a -> b -> c -> a$/);
    await rejects(nodes({ id: 'a', type: 'teleport' }), 'nodes[0].type', /unknown agent type "teleport"/);
    await rejects(nodes({ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd', payload: { amount: 'ten' } }), 'nodes[3].payload.amount', /expected number/);
    await rejects(nodes({ id: 'a:b' }), 'nodes[0].id', /letters, digits/);
    await rejects({ nodes: Array.from({ length: 1501 }, (_, i) => ({ id: `n${i}`, type: 'step', payload: {} })) }, 'nodes', /at most 1500 nodes/);
    await rejects({ nodes: [] }, 'nodes', /at least one node/);
  });

  it('shows the workflows queue in Bull Board', async () => {
    const res = await fetch(`${api.url}/admin/queues/api/queues`);
    const body = (await json(res)) as { queues: Array<{ name: string; displayName?: string }> };
    expect(body.queues.find((q) => q.name === WORKFLOW_QUEUE)?.displayName).toBe('workflows');
  });

  it('answers 404 for an unknown run', async () => {
    const res = await fetch(`${api.url}/v1/workflows/wf_nope`);
    expect(res.status).toBe(404);
  });
});
