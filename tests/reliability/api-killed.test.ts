/**
 * Fault 7 of the reliability suite: the API process killed with SIGKILL in the middle of batch
 * requests, and restarted. Two clients post batches of 50–200 tasks, each task with its own
 * idempotencyKey, and resend a batch whose request failed with the same body until it gets a 2xx.
 * For each batch that was in flight at a kill, what Redis held once the dead API's connection was
 * gone (none, all or some of its tasks) is recorded before the retry can reach the new API.
 * Reconciled: every key maps to one task id in every answer and in Redis, Redis holds exactly the
 * acknowledged tasks, each ran once (agents are never killed here) and completed. CI runs 5 kills;
 * RELIABILITY_FULL=1 runs 50.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRedis } from '../../src/redis/embedded.ts';
import { keys } from '../../src/redis/keys.ts';
import { parseQueueName, queueName } from '../../src/model/names.ts';
import { readLedger, startsById } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const FULL = process.env.RELIABILITY_FULL === '1';
const KILLS = FULL ? 50 : 5;
const CLIENTS = 2;
const POOLS = ['p1', 'p2'];
const PREFIX = 'ak';
const TYPE = 'flaky';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-api-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
const k = keys(PREFIX);
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let client: Redis;
let api: ApiProcess;
let env: Record<string, string>;
const agents: Spawned[] = [];

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
  env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: PREFIX, FLAKY_LEDGER: ledgerFile, SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500' };
  // Agents first, so the first API routes over both pools from its first request.
  agents.push(...(await Promise.all(POOLS.flatMap((pool) => [0, 1].map(() => startAgentProcess(TYPE, env, ['--pool', pool, '--concurrency', '20']))))));
  api = await startApiProcess(env);
}, 120_000);

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

interface Batch {
  n: number;
  keys: string[];
  body: string;
}
interface AnsweredTask {
  id: string;
  pool: string;
  duplicate?: boolean;
}
/** What Redis held of a batch whose request was cut by a kill, before its retry. */
interface Snapshot {
  batch: Batch;
  reserved: number;
  jobs: number;
  byPool: Map<string, { reserved: number; jobs: number }>;
}

/** The API's producer connection (named by src/api/server.ts) is gone: Redis has run whatever it had sent. */
async function apiConnectionGone(): Promise<boolean> {
  const list = String(await client.call('CLIENT', 'LIST'));
  return !list.split('\n').some((line) => / name=switchyard-api /.test(line));
}

/** Reservations and jobs Redis holds for a batch's keys, in all and per pool. */
async function holds(batch: Batch): Promise<Omit<Snapshot, 'batch'>> {
  const refs = await client.mget(...batch.keys.map((key) => k.idempotency(TYPE, key)));
  const reserved = refs.filter((r): r is string => r !== null).map((r) => r.split(' '));
  const exists = await Promise.all(reserved.map(([queue, id]) => client.exists(`${PREFIX}:${queue}:${id}`)));
  const byPool = new Map<string, { reserved: number; jobs: number }>();
  reserved.forEach(([queue], i) => {
    const pool = parseQueueName(queue ?? '')?.pool ?? '?';
    const p = byPool.get(pool) ?? { reserved: 0, jobs: 0 };
    p.reserved++;
    p.jobs += exists[i]!;
    byPool.set(pool, p);
  });
  return { reserved: reserved.length, jobs: exists.reduce((a, b) => a + b, 0), byPool };
}

/** MGET in slices (a spread of 100 000 arguments overflows the stack). */
async function mgetMany(names: readonly string[]): Promise<Array<string | null>> {
  const slices: Array<Promise<Array<string | null>>> = [];
  for (let i = 0; i < names.length; i += 1000) slices.push(client.mget(...names.slice(i, i + 1000)));
  return (await Promise.all(slices)).flat();
}

/** Every task job in Redis (BullMQ's job hash `<prefix>:<queue>:<id>`), id -> pool. */
async function jobsInRedis(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${PREFIX}:{${TYPE}.*}:${TYPE}~*`, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      const m = /^[^:]+:(\{[^}]+\}):([^:]+)$/.exec(key); // not `<id>:lock` or `<id>:logs`
      if (!m) continue;
      const pool = parseQueueName(m[1]!)?.pool;
      if (pool) found.set(m[2]!, pool);
    }
  } while (cursor !== '0');
  return found;
}

describe('API killed with SIGKILL mid-batch', () => {
  it(`acknowledges a batch fully or not at all, and a retry with the same keys creates no duplicates (${KILLS} kills)`, async () => {
    let seq = 0;
    const newBatch = (): Batch => {
      const n = 50 + Math.floor(Math.random() * 151);
      const b = seq++;
      const batchKeys = Array.from({ length: n }, (_, i) => `b${b}-t${i}`);
      const tasks = batchKeys.map((idempotencyKey) => ({ type: TYPE, idempotencyKey, payload: { latencyMs: 5, jitterMs: 5 } }));
      return { n, keys: batchKeys, body: JSON.stringify({ tasks }) };
    };

    const inFlight = new Set<Batch>();
    const cut = new Set<Batch>(); // a request for it failed
    const acked: Array<{ batch: Batch; tasks: AnsweredTask[] }> = [];
    const idsByKey = new Map<string, Set<string>>();
    let failedRequests = 0;
    let sending = true;
    let killing = false; // set from just before a kill until the new API answers

    const post = async (batch: Batch): Promise<AnsweredTask[] | undefined> => {
      const res = await fetch(`${api.url}/v1/tasks/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: batch.body,
        signal: AbortSignal.timeout(20_000),
      }).catch(() => undefined);
      if (res?.ok) return ((await res.json()) as { tasks: AnsweredTask[] }).tasks;
      if (res) {
        const text = await res.text();
        if (res.status < 500) throw new Error(`batch refused with ${res.status}: ${text}`);
      }
      return undefined;
    };

    const clientLoop = async () => {
      while (sending) {
        const batch = newBatch();
        inFlight.add(batch);
        let tasks = await post(batch);
        while (!tasks) {
          failedRequests++;
          cut.add(batch);
          // The same body again until a 2xx, while the API is down or starting.
          await waitFor(() => !killing, { timeoutMs: 60_000, intervalMs: 20, what: 'the API to be back' });
          tasks = await post(batch);
        }
        inFlight.delete(batch);
        acked.push({ batch, tasks });
        tasks.forEach((t, i) => {
          const key = batch.keys[i]!;
          const ids = idsByKey.get(key) ?? new Set<string>();
          ids.add(t.id);
          idsByKey.set(key, ids);
        });
      }
    };

    const snapshots = new Map<Batch, Snapshot>();
    const killer = async () => {
      for (let i = 0; i < KILLS; i++) {
        // Let batches flow, then kill at a random point in the lifetime of a request just sent
        // (a batch takes 30–170 ms here, p10–p90, half of it or more in Redis).
        await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
        const before = seq;
        await waitFor(() => seq > before, { timeoutMs: 10_000, intervalMs: 1, what: 'a new batch request' });
        await new Promise((r) => setTimeout(r, Math.random() * 100));
        killing = true;
        const open = [...inFlight];
        await api.kill('SIGKILL');
        await waitFor(apiConnectionGone, { timeoutMs: 10_000, intervalMs: 20, what: "the killed API's Redis connection to close" });
        // The retry cannot reach Redis before the new API is up: what Redis holds now is what the kill left.
        for (const batch of open) snapshots.set(batch, { batch, ...(await holds(batch)) });
        api = await startApiProcess(env);
        killing = false;
      }
    };

    const started = Date.now();
    const loops = Array.from({ length: CLIENTS }, () => clientLoop());
    await killer();
    sending = false;
    await Promise.all(loops);
    const flowMs = Date.now() - started;

    // Batches cut by a kill; a request that only met the dead port (never reached the API) shows as "none".
    const atKill = [...snapshots.values()].filter((s) => cut.has(s.batch));
    const none = atKill.filter((s) => s.jobs === 0);
    const all = atKill.filter((s) => s.jobs === s.batch.n);
    const some = atKill.filter((s) => s.jobs > 0 && s.jobs < s.batch.n);
    // "Some" is one pool's tasks written and another's not (the producer writes each pool with its own
    // addBulk), or a pool cut midway: BullMQ 6.7's addBulk is a pipeline of scripts, not a MULTI.
    const poolCut = some.filter((s) => [...s.byPool.values()].some((p) => p.jobs > 0 && p.jobs < p.reserved));

    // Every acknowledged task completes.
    const ackedIds = new Map<string, string>(); // id -> pool in the answer
    for (const { tasks } of acked) for (const t of tasks) ackedIds.set(t.id, t.pool);
    const queues = POOLS.map((pool) => new Queue(queueName({ type: TYPE, pool }), { connection: client, prefix: PREFIX }));
    const completed = await waitFor(async () => {
      const ids = new Set<string>();
      for (const q of queues) for (const id of await q.getRanges(['completed'], 0, -1)) ids.add(id);
      return [...ackedIds.keys()].every((id) => ids.has(id)) ? ids : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'every acknowledged task to complete' });
    await Promise.all(queues.map((q) => q.close()));

    const sentKeys = acked.reduce((a, { batch }) => a + batch.n, 0);
    const answeredWhole = acked.filter(({ batch, tasks }) => tasks.length === batch.n);
    const keysWithManyIds = [...idsByKey].filter(([, ids]) => ids.size !== 1).map(([key]) => key);
    // Redis: each key reserved once, for the id the answers gave.
    const refs = await mgetMany([...idsByKey.keys()].map((key) => k.idempotency(TYPE, key)));
    const keyMismatch = [...idsByKey].filter(([, ids], i) => refs[i]?.split(' ')[1] !== [...ids][0]).map(([key]) => key);
    const jobs = await jobsInRedis();
    const unacknowledged = [...jobs.keys()].filter((id) => !ackedIds.has(id));
    const missing = [...ackedIds.keys()].filter((id) => !jobs.has(id));
    const elsewhere = [...ackedIds].filter(([id, pool]) => jobs.get(id) !== pool).map(([id, pool]) => `${id} answered ${pool}, is in ${jobs.get(id)}`);
    // The decision stored on each task of a cut batch names the pool it is in (GET /v1/tasks/:id shows it).
    const cutIds = atKill.flatMap((s) => s.batch.keys.map((key) => [...(idsByKey.get(key) ?? [])][0] ?? ''));
    const pipe = client.pipeline();
    for (const id of cutIds) pipe.hget(`${PREFIX}:${queueName({ type: TYPE, pool: jobs.get(id) ?? '' })}:${id}`, 'data');
    const stored = ((await pipe.exec()) ?? []).map(([, data], i) => {
      const routed = (JSON.parse(typeof data === 'string' ? data : '{}') as { routing?: { pool?: string } }).routing?.pool;
      return { id: cutIds[i]!, routed };
    });
    const storedElsewhere = stored.filter(({ id, routed }) => routed !== undefined && routed !== jobs.get(id)).map(({ id, routed }) => `${id} stored ${routed}, is in ${jobs.get(id)}`);
    const starts = startsById(readLedger(ledgerFile));
    const duplicates = [...starts].filter(([, s]) => s.length > 1).map(([id]) => id);
    const neverRan = [...ackedIds.keys()].filter((id) => !starts.has(id));
    const ranUnacknowledged = [...starts.keys()].filter((id) => !ackedIds.has(id));
    const repaired = some.filter((s) => s.batch.keys.every((key) => {
      const id = [...(idsByKey.get(key) ?? [])][0];
      return id !== undefined && completed.has(id) && starts.get(id)?.length === 1;
    }));

    const describeSome = some
      .map((s) => `${s.batch.n} tasks, ${s.reserved} reserved, ${[...s.byPool].map(([pool, p]) => `${pool} ${p.jobs}/${p.reserved}`).join(' ')}`)
      .join('; ');
    const duplicateAnswers = acked.reduce((a, { tasks }) => a + tasks.filter((t) => t.duplicate).length, 0);
    console.info(
      `[reliability] api killed: ${KILLS} kills in ${(flowMs / 1000).toFixed(1)} s, ${acked.length} batches (${ackedIds.size} tasks) acknowledged, ` +
        `${failedRequests} requests failed and were retried; batches cut by a kill ${atKill.length}: Redis held none of their tasks ${none.length} ` +
        `(reservations only: ${none.filter((s) => s.reserved > 0).length}), all ${all.length}, some ${some.length} (a pool cut midway: ${poolCut.length}, repaired by the retry: ${repaired.length}${some.length ? `: ${describeSome}` : ''}); ` +
        `tasks answered as duplicates ${duplicateAnswers}; keys with more than one id ${keysWithManyIds.length}, tasks in Redis ${jobs.size} ` +
        `(not acknowledged ${unacknowledged.length}), lost ${missing.length}, ran twice ${duplicates.length}, never ran ${neverRan.length}, ran unacknowledged ${ranUnacknowledged.length}`,
    );

    expect(KILLS).toBeGreaterThan(0);
    expect(atKill.length).toBeGreaterThan(0);
    expect(answeredWhole.length).toBe(acked.length); // a 2xx answers for every task of its batch
    expect(idsByKey.size).toBe(sentKeys);
    expect(keysWithManyIds).toEqual([]);
    expect(keyMismatch).toEqual([]);
    expect(ackedIds.size).toBe(sentKeys); // one task per key
    expect(missing).toEqual([]);
    expect(unacknowledged).toEqual([]);
    expect(jobs.size).toBe(ackedIds.size);
    expect(elsewhere).toEqual([]);
    expect(storedElsewhere).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(neverRan).toEqual([]);
    expect(ranUnacknowledged).toEqual([]);
    expect(repaired.length).toBe(some.length);
    expect(agents.every((a) => a.proc.exitCode === null)).toBe(true);
  }, FULL ? 900_000 : 120_000);
});
