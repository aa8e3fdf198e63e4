/**
 * A Redis Cluster failover under load, with real processes: 3 masters with a replica each, an API
 * and agents in three pools, clients posting keyed batches and resending any that fail with the
 * same body. Mid-run the master serving a busy pool's queue is SIGKILLed; its replica takes over.
 * With SWITCHYARD_WAIT_REPLICAS=1 every acknowledged task was on a replica before the answer, so
 * none may be lost: each must run to its end (the agents' ledger). The old master is then started
 * again and rejoins as the new master's replica; tasks acknowledged after that, on the promoted
 * replica too, must run as well. The API's acknowledgement audit must notice the new master and
 * find nothing missing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type RedisConnection } from '../../src/redis/connection.ts';
import { clusterUrl } from '../../src/config/redis-url.ts';
import { keys } from '../../src/redis/keys.ts';
import { queueName } from '../../src/model/names.ts';
import { startLocalCluster, type LocalCluster } from '../../src/redis/local-cluster.ts';
import { readLedger } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const PREFIX = 'fo';
const TYPE = 'flaky';
const POOLS = ['p1', 'p2', 'p3'];
const dir = mkdtempSync(join(tmpdir(), 'switchyard-failover-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let cluster: LocalCluster;
let client: RedisConnection;
let api: ApiProcess;

beforeAll(async () => {
  cluster = await startLocalCluster({ masters: 3, replicas: 1, dataDir: join(dir, 'cluster') });
  const url = clusterUrl(cluster.nodes);
  client = createRedis(url, 'blocking', 'failover-test');
  const env = {
    REDIS_URL: url, SWITCHYARD_PREFIX: PREFIX, FLAKY_LEDGER: ledgerFile, SWITCHYARD_WAIT_REPLICAS: '1',
    SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500',
  };
  await Promise.all(POOLS.map((pool) => startAgentProcess(TYPE, env, ['--pool', pool, '--concurrency', '20'])));
  api = await startApiProcess(env);
}, 120_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

/** host:port of the master serving a key's slot, as a surviving node tells it. */
async function ownerOf(key: string): Promise<string> {
  const slot = calculateSlot(key);
  const range = (await client.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to);
  const master = range?.[2];
  if (!master) throw new Error(`no master serves slot ${slot}`);
  return `${master[0]}:${master[1]}`;
}

describe('Redis Cluster failover', () => {
  it('loses no acknowledged task when a master dies and its replica takes over, and work resumes', async () => {
    const waitKey = `${keys(PREFIX).job(queueName({ type: TYPE, pool: 'p1' }), 'x')}`;
    const victim = await ownerOf(waitKey);
    const acked = new Set<string>();
    const ackedAfter = new Set<string>();
    let failedRequests = 0;
    const failures = new Map<string, number>();
    let killedAt = 0;
    let failedOverAt = 0;
    let seq = 0;

    const post = async (body: string): Promise<string[] | undefined> => {
      const res = await fetch(`${api.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(20_000) }).catch(() => undefined);
      if (res?.ok) return ((await res.json()) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id);
      if (res && res.status < 500) throw new Error(`batch refused with ${res.status}: ${await res.text()}`);
      const what = res ? `${res.status} ${((await res.json().catch(() => ({}))) as { title?: string }).title ?? ''}` : 'no answer';
      failures.set(what, (failures.get(what) ?? 0) + 1);
      return undefined;
    };
    let sending = true;
    const sender = async () => {
      while (sending) {
        const b = seq++;
        // Pinned round the pools, so the victim's pool keeps getting work through the failover.
        const tasks = Array.from({ length: 20 }, (_, i) => ({ type: TYPE, pool: POOLS[(b + i) % POOLS.length], idempotencyKey: `b${b}-t${i}`, payload: { latencyMs: 5 } }));
        const body = JSON.stringify({ tasks });
        for (;;) {
          const ids = await post(body);
          if (ids) {
            for (const id of ids) (failedOverAt ? ackedAfter : acked).add(id);
            break;
          }
          failedRequests++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const senders = [sender(), sender()];

    await waitFor(() => acked.size >= 500, { timeoutMs: 30_000, what: '500 tasks acknowledged before the kill' });
    const server = cluster.servers.find((s) => `127.0.0.1:${s.port}` === victim)!;
    server.process.kill('SIGKILL');
    killedAt = Date.now();
    await waitFor(async () => (await ownerOf(waitKey).catch(() => victim)) !== victim, { timeoutMs: 30_000, intervalMs: 200, what: 'a replica to take over the slot' });
    failedOverAt = Date.now();
    // The promoted replica has no replica of its own: with SWITCHYARD_WAIT_REPLICAS=1 its shard refuses
    // to acknowledge (503) until the old master comes back, as its replica, as an operator would do.
    await cluster.restart(server.port);
    await waitFor(() => ackedAfter.size >= 300, { timeoutMs: 30_000, what: '300 tasks acknowledged after the failover' });
    sending = false;
    await Promise.all(senders);

    const all = [...acked, ...ackedAfter];
    const ended = () => new Set(readLedger(ledgerFile).filter((l) => l.ev === 'end').map((l) => l.id));
    await waitFor(() => all.every((id) => ended().has(id)), { timeoutMs: 60_000, intervalMs: 500, what: 'every acknowledged task to run to its end' }).catch(() => undefined);
    const done = ended();
    const lost = all.filter((id) => !done.has(id));
    console.log(
      `[failover] killed master ${victim}; replica took over after ${failedOverAt - killedAt} ms; ` +
        `${acked.size} tasks acknowledged before, ${ackedAfter.size} after; ${failedRequests} requests failed and were resent; lost ${lost.length}`,
    );
    expect(lost).toEqual([]);
    // While the shard had no master, or no replica to confirm, the API answered 503, never 500.
    console.log(`[failover] failed requests: ${JSON.stringify(Object.fromEntries(failures))}`);
    for (const what of failures.keys()) expect(what).toMatch(/^503 (Service unavailable|Not replicated)$/);
    // The API saw a master it did not know (the promoted replica) and checked what it had just acknowledged.
    const audit = await waitFor(() => api.output().split('\n').find((l) => l.includes('failed over')), { timeoutMs: 30_000, what: 'the acknowledgement audit after the failover' });
    expect(audit).toMatch(/every task acknowledged in the last seconds before it is still there/);
  }, 180_000);
});
