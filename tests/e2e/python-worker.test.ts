/**
 * The Python worker of examples/python-worker (standard library only) against a real API process,
 * beside Node agents: it takes part in weighted routing like any agent, and SIGKILLs of Python
 * workers under load lose nothing (the fault tests' ledger, written by both languages' `flaky`
 * handlers): every acknowledged task completes, none is committed twice, and only tasks that were
 * running on a killed worker run twice. Skips, saying why, where no python3 is installed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { queueName } from '../../src/model/names.ts';
import { inFlight, readLedger, startsById } from '../support/ledger.ts';
import { findTool, PYTHON } from '../support/optional-tool.ts';
import { fastFleetEnv, startAgentProcess, startApiProcess, startPythonWorker, type Spawned } from '../support/processes.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const python = findTool(PYTHON, 'tests/e2e/python-worker.test.ts');
const { sub } = useRedisPrefix('e2e-python');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-python-'));
const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe.skipIf(!python)('the Python worker', () => {
  it('is routed to beside a Node agent by weight (3 to 1) and completes what it leases', async () => {
    const env = fastFleetEnv(sub('w'));
    const api = await startApiProcess(env);
    await startAgentProcess('echo', env, ['--pool', 'node', '--weight', '1']);
    await startPythonWorker(python!, 'echo', api.url, {}, ['--pool', 'py', '--weight', '3', '--concurrency', '8']);
    await waitFor(async () => {
      const pools = (await (await fetch(`${api.url}/v1/pools?type=echo`)).json()) as Array<{ pool: string; eligible: boolean }>;
      return ['node', 'py'].every((p) => pools.some((x) => x.pool === p && x.eligible));
    }, { what: 'both pools eligible' });
    const sent = await post(`${api.url}/v1/tasks/batch`, { tasks: Array.from({ length: 400 }, (_, i) => ({ type: 'echo', payload: { message: `m${i}` } })) });
    expect(sent.status).toBe(202);
    const tasks = sent.body.tasks as Array<{ id: string; pool: string }>;
    const py = tasks.filter((t) => t.pool === 'py').length / tasks.length;
    console.info(`[e2e] python worker: ${(py * 100).toFixed(0)} % of 400 tasks routed to its pool (weight 3 of 4)`);
    expect(py).toBeGreaterThan(0.6);
    expect(py).toBeLessThan(0.9);
    await waitFor(async () => {
      const pools = (await (await fetch(`${api.url}/v1/pools?type=echo`)).json()) as Array<{ backlog: { completed: number } }>;
      return pools.reduce((n, p) => n + p.backlog.completed, 0) >= 400;
    }, { timeoutMs: 30_000, what: 'every task completed' });
    const sample = (await (await fetch(`${api.url}/v1/tasks/${tasks.find((t) => t.pool === 'py')!.id}`)).json()) as { state: string; result: unknown };
    expect(sample).toMatchObject({ state: 'completed', result: { echoed: { message: expect.stringMatching(/^m\d+$/) } } });
  }, 90_000);

  it('loses nothing and commits each task once over 20 SIGKILLs of Python workers under load', async () => {
    const ledgerFile = join(dir, 'ledger.jsonl');
    const p = sub('k');
    // Short leases so a killed worker's tasks come back quickly; attempts and stalls allowed well past what
    // 20 kills can spend on one task, so only a lost task, never the poison-pill rule, can fail the count.
    const env = fastFleetEnv(p, { FLAKY_LEDGER: ledgerFile, SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_MAX_STALLED: '20', SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500' });
    const api = await startApiProcess(env);
    await startAgentProcess('flaky', env, ['--pool', 'node', '--concurrency', '10']);
    const startPy = () => startPythonWorker(python!, 'flaky', api.url, { FLAKY_LEDGER: ledgerFile }, ['--pool', 'py', '--weight', '2', '--concurrency', '20', '--batch', '20']);
    const workers: Spawned[] = [await startPy(), await startPy()];
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    closers.push(async () => redis.quit());
    const commits = new Map<string, number>();
    for (const pool of ['node', 'py']) {
      const events = new QueueEvents(queueName({ type: 'flaky', pool }), { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: p });
      events.on('completed', ({ jobId }) => commits.set(jobId, (commits.get(jobId) ?? 0) + 1));
      await events.waitUntilReady();
      closers.push(() => events.close());
    }
    await waitFor(async () => ((await (await fetch(`${api.url}/v1/pools?type=flaky`)).json()) as Array<{ pool: string; eligible: boolean }>).some((x) => x.pool === 'py' && x.eligible), { what: 'the python pool eligible' });

    const TASKS = 800;
    const KILLS = 20;
    const acked: string[] = [];
    const sender = (async () => {
      while (acked.length < TASKS) {
        const tasks = Array.from({ length: 20 }, () => ({ type: 'flaky', payload: { latencyMs: 150, jitterMs: 100 }, attempts: 10 }));
        const res = await post(`${api.url}/v1/tasks/batch`, { tasks });
        if (res.status === 202) acked.push(...(res.body.tasks as Array<{ id: string }>).map((t) => t.id));
        await new Promise((r) => setTimeout(r, 350));
      }
    })();
    const kills: Array<{ pid: number; t: number }> = [];
    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 400 + Math.random() * 400));
      const i = k % workers.length;
      kills.push({ pid: workers[i]!.proc.pid!, t: Date.now() });
      await workers[i]!.kill('SIGKILL');
      workers[i] = await startPy();
    }
    await sender;

    const queues = ['node', 'py'].map((pool) => new Queue(queueName({ type: 'flaky', pool }), { connection: redis, prefix: p }));
    const done = await waitFor(async () => {
      const ids = new Set<string>();
      for (const q of queues) for (const j of await q.getJobs(['completed'], 0, -1)) if (j?.id) ids.add(j.id);
      return acked.every((id) => ids.has(id)) ? ids : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'every acknowledged task to complete' });
    await Promise.all(queues.map((q) => q.close()));
    await new Promise((r) => setTimeout(r, 500)); // the last completion events

    const ledger = readLedger(ledgerFile);
    const starts = startsById(ledger);
    const lost = acked.filter((id) => !done.has(id));
    const doubleCommits = [...commits].filter(([, n]) => n > 1).map(([id]) => id);
    const reruns = [...starts].filter(([, s]) => s.length > 1).map(([id]) => id);
    const onKilled = new Set(kills.flatMap(({ pid, t }) => inFlight(ledger, pid, t)));
    // A task may also run again when its worker died after its handler ended but before its result was committed.
    const ranOnKilled = (id: string) => kills.some(({ pid, t }) => (starts.get(id) ?? []).some((s) => s.pid === pid && s.t <= t));
    const byPython = new Set(ledger.filter((l) => kills.some((k) => k.pid === l.pid) || workers.some((w) => w.proc.pid === l.pid)).map((l) => l.id));
    console.info(`[e2e] python workers killed: ${kills.length} kills, ${acked.length} acknowledged, lost ${lost.length}, double commits ${doubleCommits.length}, re-run ${reruns.length} (in flight at the kills: ${onKilled.size}), run by Python ${byPython.size}`);
    expect(kills.length).toBe(KILLS);
    expect(lost).toEqual([]);
    expect(doubleCommits).toEqual([]);
    expect(onKilled.size).toBeGreaterThan(0); // the kills hit running tasks
    for (const id of reruns) expect(ranOnKilled(id), `${id} ran twice without being on a killed worker`).toBe(true);
    expect(byPython.size).toBeGreaterThan(TASKS / 4);
  }, 180_000);
});
