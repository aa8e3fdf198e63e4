/**
 * Fault 5 of the reliability suite: a handler blocks its agent's event loop for longer than the
 * lock, so the lock lapses and another agent takes the task. Exactly one result is committed (the
 * stale agent's is refused by BullMQ's lock check), both runs show in the ledger and in the task's
 * `attempts.started`, and the blocked agent keeps working afterwards.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRedis } from '../../src/redis/embedded.ts';
import { queueName } from '../../src/model/names.ts';
import { json } from '../support/http.ts';
import { readLedger, startsById } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-lost-lock-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let api: ApiProcess;
let agents: Spawned[];
let events: QueueEvents;
const commits = new Map<string, number>();

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  const env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'lock', FLAKY_LEDGER: ledgerFile, SWITCHYARD_LOCK_MS: '1000', SWITCHYARD_STALLED_INTERVAL_MS: '500' };
  api = await startApiProcess(env);
  agents = [await startAgentProcess('flaky', env), await startAgentProcess('flaky', env)];
  events = new QueueEvents(queueName({ type: 'flaky', pool: 'default' }), { connection: new Redis(redis.url, { maxRetriesPerRequest: null }), prefix: 'lock' });
  events.on('completed', ({ jobId }) => commits.set(jobId, (commits.get(jobId) ?? 0) + 1));
  await events.waitUntilReady();
}, 60_000);

afterAll(async () => {
  await events?.close();
  await redis?.stop();
});

interface TaskBody { id: string; state: string; agent?: string; attempts: { made: number; max: number; started: number }; result?: { attempt: number } }

describe('a handler that blocks past its lock', () => {
  it('loses the task to another agent; exactly one result is committed and both runs are visible', async () => {
    const res = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'flaky', payload: { blockFirstRunMs: 3000 } }) });
    const { id } = (await json(res)) as TaskBody;
    const done = await waitFor(async () => {
      const t = (await json(fetch(`${api.url}/v1/tasks/${id}`))) as TaskBody;
      return t.state === 'completed' ? t : undefined;
    }, { timeoutMs: 30_000, what: 'the task to complete' });
    // Let the stale agent wake up and try to commit its own result.
    await waitFor(() => readLedger(ledgerFile).filter((l) => l.id === id && l.ev === 'end').length === 2, { timeoutMs: 15_000, what: 'both runs to end' });
    await new Promise((r) => setTimeout(r, 1000));
    const runs = startsById(readLedger(ledgerFile)).get(id) ?? [];
    expect(new Set(runs.map((r) => r.pid)).size).toBe(2);
    expect(commits.get(id)).toBe(1);
    const after = (await json(fetch(`${api.url}/v1/tasks/${id}`))) as TaskBody;
    expect(after).toMatchObject({ state: 'completed', attempts: { made: 1, started: 2 } });
    expect(after.agent).toBe(done.agent);
    // Both agents are alive and the pool keeps working.
    expect(agents.every((a) => a.proc.exitCode === null)).toBe(true);
    const next = (await json(await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'flaky', payload: {} }) }))) as TaskBody;
    await waitFor(async () => ((await json(fetch(`${api.url}/v1/tasks/${next.id}`))) as TaskBody).state === 'completed', { what: 'a later task to complete' });
    console.info(`[reliability] lost lock: 2 runs on 2 agents, ${commits.get(id)} commit, attempts ${JSON.stringify(after.attempts)}`);
  }, 60_000);
});
