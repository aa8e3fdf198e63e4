/**
 * The limit per concurrency key while an agent dies: three `flaky` agent processes (concurrency 10)
 * run 240 tasks over 4 keys with concurrencyLimit 2; one agent is SIGKILLed mid-run. From the ledger
 * the handlers write (a line when an execution starts and when it ends), the executions of a key
 * never overlap more than 2 at once (the killed agent's open ones count until it died), and every
 * task completed. The full figure (10 000 tasks over 50 keys, limit 3, 4 agents × 20) is
 * `npm run bench -- flow`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueName } from '../../src/model/names.ts';
import { json } from '../support/http.ts';
import { readLedger, type LedgerLine } from '../support/ledger.ts';
import { fastFleetEnv, startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const TASKS = 240;
const KEYS = ['acme', 'globex', 'initech', 'umbrella'];
const LIMIT = 2;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-key-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
const { prefix, redis } = useRedisPrefix('key-killed');
// A short lock: the killed agent's tasks and slots come back within seconds.
const env = fastFleetEnv(prefix, { FLAKY_LEDGER: ledgerFile, SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_STALLED_INTERVAL_MS: '1000' });
let api: ApiProcess;
const agents: Spawned[] = [];

beforeAll(async () => {
  agents.push(...(await Promise.all([0, 1, 2].map(() => startAgentProcess('flaky', env, ['--concurrency', '10'])))));
  api = await startApiProcess(env);
}, 60_000);

afterAll(async () => {
  await Promise.all([api, ...agents].map((p) => p.kill()));
});

/** The most executions of one key's tasks that were running at once; an execution never ended ends at `deadAt`. */
function mostAtOnce(lines: readonly LedgerLine[], keyOf: Map<string, string>, deadPid: number, deadAt: number): Map<string, number> {
  const events: Array<{ key: string; t: number; d: 1 | -1 }> = [];
  const open = new Map<string, LedgerLine>();
  for (const l of lines) {
    const key = keyOf.get(l.id);
    if (!key) continue;
    const run = `${l.id}/${l.pid}/${l.attempt}`;
    if (l.ev === 'start') open.set(run, l);
    else open.delete(run);
    events.push({ key, t: l.t, d: l.ev === 'start' ? 1 : -1 });
  }
  for (const l of open.values()) if (l.pid === deadPid) events.push({ key: keyOf.get(l.id)!, t: deadAt, d: -1 });
  // At the same millisecond an end comes first: a slot is freed after its task ended, and taken before the next starts.
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  const now = new Map<string, number>();
  const most = new Map<string, number>();
  for (const e of events) {
    const n = (now.get(e.key) ?? 0) + e.d;
    now.set(e.key, n);
    most.set(e.key, Math.max(most.get(e.key) ?? 0, n));
  }
  return most;
}

describe('a concurrency key while an agent dies', () => {
  it('never runs more than its limit of a key at once, and loses nothing', async () => {
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ type: 'flaky', payload: { latencyMs: 40 }, concurrencyKey: KEYS[i % KEYS.length], concurrencyLimit: LIMIT }));
    const accepted = await json(fetch(`${api.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) }));
    const keyOf = new Map<string, string>(accepted.tasks.map((t: { id: string }, i: number) => [t.id, KEYS[i % KEYS.length]!]));
    await waitFor(() => readLedger(ledgerFile).filter((l) => l.ev === 'end').length >= TASKS / 4, { timeoutMs: 30_000, what: 'a quarter of the tasks done' });
    const victim = agents[0]!;
    await victim.kill('SIGKILL');
    const deadAt = Date.now();

    const queue = new Queue(queueName({ type: 'flaky', pool: 'default' }), { connection: redis, prefix });
    try {
      await waitFor(async () => ((await queue.getJobCounts('completed')).completed ?? 0) === TASKS, { timeoutMs: 60_000, what: `all ${TASKS} tasks completed` });
      expect((await queue.getJobCounts('failed')).failed).toBe(0);
    } finally {
      await queue.close();
    }
    const lines = readLedger(ledgerFile);
    const most = mostAtOnce(lines, keyOf, victim.proc.pid!, deadAt);
    expect(Object.fromEntries(most)).toEqual(Object.fromEntries(KEYS.map((k) => [k, LIMIT])));
    const killedOpen = lines.filter((l) => l.pid === victim.proc.pid && l.ev === 'start').length - lines.filter((l) => l.pid === victim.proc.pid && l.ev === 'end').length;
    console.info(`[reliability] limit ${LIMIT} per key over ${KEYS.length} keys: at most ${Math.max(...most.values())} of a key ran at once; an agent killed with ${killedOpen} running, all ${TASKS} completed`);
  }, 120_000);
});
