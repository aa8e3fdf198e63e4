/**
 * Real processes end to end: the API and agents run as `switchyard api` / `switchyard agent`
 * child processes against real Redis; the test speaks HTTP only (and kills agents).
 */
import { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { json } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('e2e-flow');
const env = { REDIS_URL, SWITCHYARD_PREFIX: prefix, SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_STALLED_INTERVAL_MS: '1000' };
let api: ApiProcess;
let flaky: Spawned;

beforeAll(async () => {
  [api, flaky] = await Promise.all([startApiProcess(env), startAgentProcess('flaky', env), startAgentProcess('echo', env)]);
});

interface TaskBody {
  id: string;
  state: string;
  result?: { attempt?: number };
  attempts: { made: number; max: number };
  error?: string;
  agent?: string;
}

const enqueue = async (body: unknown): Promise<TaskBody> => {
  const res = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return (await json(res)) as TaskBody;
};
const get = async (id: string): Promise<TaskBody> => (await json(fetch(`${api.url}/v1/tasks/${id}`))) as TaskBody;
const until = (id: string, states: string[], timeoutMs = 15_000) =>
  waitFor(async () => {
    const t = await get(id);
    return states.includes(t.state) ? t : undefined;
  }, { timeoutMs, intervalMs: 20, what: `task ${id} to reach ${states.join('/')}` });

describe('a task through real processes', () => {
  it('round-trips: POST, then GET shows completed with the result', async () => {
    const started = Date.now();
    const task = await enqueue({ type: 'echo', payload: { message: 'hello' } });
    const done = await until(task.id, ['completed'], 5000);
    expect(done).toMatchObject({ state: 'completed', result: { echoed: { message: 'hello' } } });
    console.info(`[e2e] echo round trip: ${Date.now() - started} ms from POST to completed`);
  });

  it('completes all 1 000 tasks of a batch', async () => {
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ type: 'flaky', payload: { latencyMs: i % 3 } }));
    const started = Date.now();
    const res = await fetch(`${api.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
    expect(res.status).toBe(202);
    const { tasks: accepted } = (await json(res)) as { tasks: TaskBody[] };
    expect(new Set(accepted.map((t) => t.id)).size).toBe(1000);
    const accepts = Date.now() - started;
    const queue = new Queue('{flaky.default}', { connection: redis, prefix });
    await waitFor(async () => (await queue.getJobCountByTypes('completed')) >= 1000, { timeoutMs: 60_000, what: '1000 completed' });
    const elapsed = Date.now() - started;
    await queue.close();
    // Every accepted id is readable and completed.
    for (let i = 0; i < accepted.length; i += 100) {
      const views = await Promise.all(accepted.slice(i, i + 100).map((t) => get(t.id)));
      expect(views.every((v) => v.state === 'completed')).toBe(true);
    }
    console.info(`[e2e] batch of 1000: accepted in ${accepts} ms, all completed ${elapsed} ms after POST`);
  });

  it('fails a task the agent rejects as fatal without retries', async () => {
    const task = await enqueue({ type: 'flaky', payload: { failRate: 1, fatal: true }, attempts: 5 });
    const dead = await until(task.id, ['dead']);
    expect(dead.attempts).toEqual({ made: 1, max: 5, started: 1 });
    expect(dead.error).toBe('flaky failure on attempt 1');
  });

  it('survives a job its schema rejects, and keeps working', async () => {
    const queue = new Queue('{flaky.default}', { connection: redis, prefix });
    const bad = await queue.add('flaky', { payload: { failRate: 'often' }, timeoutMs: 1000, routing: { strategy: 'fixed', pool: 'default', candidates: ['default'], reason: 'hand-written' } }, { attempts: 3, jobId: 'flaky~handwritten1' });
    await queue.close();
    const dead = await until(bad.id!, ['dead']);
    expect(dead.attempts.made).toBe(1);
    expect(dead.error).toMatch(/payload of flaky is invalid: payload\.failRate/);
    expect(flaky.proc.exitCode).toBeNull();
    const next = await enqueue({ type: 'flaky', payload: {} });
    expect((await until(next.id, ['completed'])).state).toBe('completed');
  });

  it('recovers the task of an agent killed with SIGKILL: another agent completes it', async () => {
    const task = await enqueue({ type: 'flaky', payload: { latencyMs: 3000 } });
    const active = await until(task.id, ['active']);
    await flaky.kill('SIGKILL');
    const killedAt = Date.now();
    flaky = await startAgentProcess('flaky', env);
    const done = await until(task.id, ['completed'], 30_000);
    expect(done.agent).not.toBe(active.agent);
    console.info(`[e2e] SIGKILL recovery: completed ${Date.now() - killedAt} ms after the kill`);
  });

  it('on SIGTERM, an agent finishes its in-flight task before exiting', async () => {
    const task = await enqueue({ type: 'flaky', payload: { latencyMs: 1500 } });
    const active = await until(task.id, ['active']);
    expect(await flaky.kill('SIGTERM')).toBe(0);
    const done = await get(task.id);
    expect({ state: done.state, agent: done.agent }, JSON.stringify(done)).toEqual({ state: 'completed', agent: active.agent });
  });
});
