/**
 * A pool loses every agent at once (SIGKILL) while it holds running and waiting tasks. No agent of
 * that pool is left to run BullMQ's stalled check, so the API does it: the running tasks go back
 * to waiting, then every task of the dead pool moves to a live pool and completes. Nothing is lost.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { json } from '../support/http.ts';
import { fastFleetEnv, startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-pool-loss');
const env = fastFleetEnv(prefix, { SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_STALLED_INTERVAL_MS: '1000', SWITCHYARD_REROUTE_GRACE_MS: '500' });
let api: ApiProcess;
let doomed: Spawned;

interface TaskBody { id: string; state: string; pool: string }

beforeAll(async () => {
  [api, doomed] = await Promise.all([
    startApiProcess(env),
    startAgentProcess('flaky', env, ['--pool', 'doomed', '--weight', '1000', '--concurrency', '4']),
    startAgentProcess('flaky', env, ['--pool', 'safe', '--concurrency', '8']),
  ]);
  await waitFor(async () => ((await json(fetch(`${api.url}/v1/agents?type=flaky&health=HEALTHY`))) as unknown[]).length === 2, { what: 'two healthy agents' });
});

describe('a pool that loses all its agents', () => {
  it('hands its running and waiting tasks to a live pool, losing none', async () => {
    const res = await fetch(`${api.url}/v1/tasks/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: Array.from({ length: 10 }, () => ({ type: 'flaky', payload: { latencyMs: 3000 } })) }),
    });
    const { tasks } = (await json(res)) as { tasks: TaskBody[] };
    expect(tasks.filter((t) => t.pool === 'doomed').length).toBeGreaterThanOrEqual(8);
    const get = (id: string) => json(fetch(`${api.url}/v1/tasks/${id}`)) as Promise<TaskBody>;
    await waitFor(async () => (await Promise.all(tasks.map((t) => get(t.id)))).filter((t) => t.state === 'active' && t.pool === 'doomed').length >= 4, { what: 'the doomed pool running 4 tasks' });
    const killedAt = Date.now();
    await doomed.kill('SIGKILL');
    const done = await waitFor(async () => {
      const views = await Promise.all(tasks.map((t) => get(t.id)));
      return views.every((v) => v.state === 'completed') ? views : undefined;
    }, { timeoutMs: 40_000, intervalMs: 200, what: 'all ten tasks to complete elsewhere' });
    expect(done.every((t) => t.pool === 'safe')).toBe(true);
    console.info(`[e2e] pool lost: all its tasks completed in another pool ${Date.now() - killedAt} ms after the kill`);
  }, 60_000);
});
