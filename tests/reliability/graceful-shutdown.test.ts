/**
 * Fault 8 of the reliability suite: SIGTERM to an agent running 100 tasks. Tasks that finish within
 * the grace period complete; the others go back to waiting without spending an attempt, and none is
 * left locked to a dead agent. Then SIGTERM to the API while requests are in flight: they are
 * answered, and the process exits.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRedis } from '../../src/redis/embedded.ts';
import { queueName } from '../../src/model/names.ts';
import { json } from '../support/http.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-shutdown-'));
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let api: ApiProcess;
let env: Record<string, string>;

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'gs', SWITCHYARD_SHUTDOWN_GRACE_MS: '3000' };
  api = await startApiProcess(env);
}, 60_000);

afterAll(async () => {
  await redis?.stop();
});

interface TaskBody { id: string; state: string; attempts: { made: number; started: number } }

describe('graceful shutdown', () => {
  it('an agent with 100 active tasks: short ones complete, long ones go back to waiting unspent, none stalled', async () => {
    const agent = await startAgentProcess('flaky', env, ['--concurrency', '100']);
    const batch = (latencyMs: number) =>
      fetch(`${api.url}/v1/tasks/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tasks: Array.from({ length: 50 }, () => ({ type: 'flaky', payload: { latencyMs } })) }),
      }).then(async (r) => ((await json(r)) as { tasks: TaskBody[] }).tasks);
    const short = await batch(1000); // finish within the 3 s grace
    const long = await batch(60_000); // do not
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(queueName({ type: 'flaky', pool: 'default' }), { connection: client, prefix: 'gs' });
    await waitFor(async () => (await queue.getActiveCount()) === 100, { what: '100 active tasks' });
    const started = Date.now();
    expect(await agent.kill('SIGTERM')).toBe(0);
    const took = Date.now() - started;
    const get = async (id: string) => (await json(fetch(`${api.url}/v1/tasks/${id}`))) as TaskBody;
    const shortViews = await Promise.all(short.map((t) => get(t.id)));
    const longViews = await Promise.all(long.map((t) => get(t.id)));
    console.info(`[reliability] graceful shutdown: agent exited ${took} ms after SIGTERM; ${shortViews.filter((t) => t.state === 'completed').length} short tasks completed, ${longViews.filter((t) => t.state === 'waiting').length} long ones back to waiting`);
    expect(took).toBeLessThan(25_000);
    expect(shortViews.every((t) => t.state === 'completed')).toBe(true);
    expect(longViews.every((t) => t.state === 'waiting' && t.attempts.made === 0)).toBe(true);
    expect(await queue.getActiveCount()).toBe(0); // nothing left locked to the stopped agent
    await queue.close();
    client.disconnect();
  }, 60_000);

  it('the API answers the requests in flight, then exits', async () => {
    const requests = Array.from({ length: 20 }, () =>
      fetch(`${api.url}/v1/tasks/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tasks: Array.from({ length: 200 }, () => ({ type: 'echo', payload: {} })) }),
      }).then((r) => r.status, () => 'refused'),
    );
    await new Promise((r) => setTimeout(r, 20));
    api.proc.kill('SIGTERM');
    const statuses = await Promise.all(requests);
    expect(await api.exited).toBe(0);
    // Each request was either answered in full (202) or refused before it was read: never cut off with an accepted half.
    expect(statuses.every((s) => s === 202 || s === 'refused')).toBe(true);
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThan(0);
  }, 30_000);
});
