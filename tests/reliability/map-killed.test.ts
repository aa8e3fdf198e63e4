/**
 * A map node under faults: a map of 80 `flaky` items, 8 at once, while every API process is SIGKILLed
 * and Redis is SIGKILLed and restarted (AOF, appendfsync always) in the middle of it, and then the
 * agent running its items is SIGKILLed (another takes over). The agents go on starting items without
 * any API process (each settled item starts the next); the items of the killed agent are run again
 * once their locks lapse, and an item whose start the kill cut short is re-added by the sweep. The map
 * completes with one result per item, in order, every item ran (the agents' ledger), and the node
 * after the map ran once.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pingRedis, spawnRedis } from '../../src/redis/embedded.ts';
import { readLedger } from '../support/ledger.ts';
import { startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const ITEMS = 80;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-map-killed-'));
const ledgerFile = join(dir, 'ledger.jsonl');
let redis: Awaited<ReturnType<typeof spawnRedis>>;
let env: Record<string, string>;
let apis: ApiProcess[] = [];
let agent: Awaited<ReturnType<typeof startAgentProcess>>;

beforeAll(async () => {
  redis = await spawnRedis({ dataDir: join(dir, 'redis') });
  env = { REDIS_URL: redis.url, SWITCHYARD_PREFIX: 'mk', FLAKY_LEDGER: ledgerFile, SWITCHYARD_HEARTBEAT_MS: '500', SWITCHYARD_AGENT_TTL_MS: '1500', SWITCHYARD_LOCK_MS: '2000' };
  agent = await startAgentProcess('flaky', env, ['--concurrency', '20']);
  apis = await Promise.all([0, 1].map(() => startApiProcess(env)));
}, 120_000);

afterAll(async () => {
  await redis?.stop();
});

const post = (api: ApiProcess, path: string, body: unknown) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const itemEnds = () => readLedger(ledgerFile).filter((l) => l.ev === 'end' && /\.each\.\d+$/.test(l.id));

describe('a map node while every API process and Redis die', () => {
  it('goes on after they are back and completes with every item\'s result in order, its dependent run once', async () => {
    const res = await post(apis[0]!, '/v1/workflows', {
      nodes: [
        { id: 'list', kind: 'signal', name: 'items' },
        { id: 'each', kind: 'map', over: 'list.items', type: 'flaky', concurrency: 8, dependsOn: ['list'] },
        { id: 'last', type: 'flaky', payload: {}, dependsOn: ['each'] },
      ],
    });
    expect(res.status).toBe(202);
    const id = ((await res.json()) as { id: string }).id;
    expect((await post(apis[1]!, `/v1/workflows/${id}/signals/items`, { items: Array.from({ length: ITEMS }, () => ({ latencyMs: 150 })) })).status).toBeLessThan(300);
    await waitFor(() => itemEnds().length >= 16, { timeoutMs: 30_000, what: 'a few items done' });

    await Promise.all(apis.map((a) => a.kill('SIGKILL')));
    await waitFor(() => itemEnds().length >= 24, { timeoutMs: 30_000, what: 'items settled while no API runs' });
    redis.process.kill('SIGKILL');
    const port = redis.port;
    await waitFor(async () => !(await pingRedis('127.0.0.1', port, 200)), { what: 'Redis down' });
    redis = await spawnRedis({ dataDir: join(dir, 'redis'), port });
    apis = await Promise.all([0, 1].map(() => startApiProcess(env)));
    await waitFor(() => itemEnds().length >= 40, { timeoutMs: 30_000, what: 'half the items done' });
    await agent.kill('SIGKILL');
    agent = await startAgentProcess('flaky', env, ['--concurrency', '20']);

    const view = await waitFor(async () => {
      const v = (await fetch(`${apis[0]!.url}/v1/workflows/${id}`).then((r) => r.json())) as { state: string; nodes: Array<{ id: string; result?: unknown; items?: unknown }> };
      if (v.state !== 'running') return v;
      return undefined;
    }, { timeoutMs: 90_000, what: 'the run to end' });
    expect(view.state).toBe('completed');
    const each = view.nodes.find((n) => n.id === 'each')!;
    expect(each.items).toEqual({ total: ITEMS, done: ITEMS, failed: 0, running: 0 });
    expect(each.result).toHaveLength(ITEMS);
    expect((each.result as Array<{ ok: boolean }>).every((r) => r.ok === true)).toBe(true);
    const ran = new Set(itemEnds().map((l) => Number(l.id.split('.').pop())));
    expect(ran.size).toBe(ITEMS);
    expect(readLedger(ledgerFile).filter((l) => l.ev === 'start' && l.id === `${id}.last`)).toHaveLength(1);
    console.info(`[reliability] a map of ${ITEMS} items through SIGKILL of every API process, a Redis restart and SIGKILL of its agent: completed, ${itemEnds().length} item executions for ${ITEMS} items`);
  }, 180_000);
});
