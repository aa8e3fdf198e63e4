import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Registry, parseCapability } from '../../src/registry/registry.ts';
import type { Registration } from '../../src/model/agent-record.ts';
import { Housekeeper } from '../../src/housekeeping/housekeeper.ts';
import { keys } from '../../src/redis/keys.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('registry');
const registry = new Registry(redis, prefix);
const timing = { heartbeatMs: 1000, ttlMs: 3000 };
const T0 = 1_800_000_000_000;

const agent = (id: string, over: Partial<Registration> = {}): Registration => ({
  id,
  type: 'transform',
  pool: 'default',
  version: '1.2.3',
  capabilities: [{ name: 'transform', version: '1.2.3' }],
  tags: [],
  weight: 1,
  concurrency: 4,
  ...over,
});

describe('registration', () => {
  it('writes an UNKNOWN agent that lookups find', async () => {
    await registry.register(agent('reg-1', { tags: ['gpu'] }), timing, T0);
    const view = await registry.get('reg-1', T0);
    expect(view).toMatchObject({ id: 'reg-1', type: 'transform', pool: 'default', health: 'UNKNOWN', running: 0, load: 0, draining: false, tags: ['gpu'] });
  });

  it.each([
    [{ id: '' }, 'id'],
    [{ type: '' }, 'type'],
    [{ version: 'latest' }, 'version'],
    [{ capabilities: [] }, 'capabilities'],
    [{ capabilities: [{ name: 'x', version: 'one' }] }, 'capabilities[0].version'],
    [{ capabilities: [{ name: '', version: '1.0.0' }] }, 'capabilities[0].name'],
    [{ weight: 0 }, 'weight'],
    [{ weight: -2 }, 'weight'],
  ])('rejects %j with an error naming %s', async (over, path) => {
    await expect(registry.register(agent('bad', over as Partial<Registration>), timing, T0)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: expect.arrayContaining([expect.objectContaining({ path })]),
    });
    expect(await registry.get('bad', T0)).toBeUndefined();
  });
});

describe('heartbeats and expiry', () => {
  it('a heartbeat keeps an agent alive and carries its health and load', async () => {
    await registry.register(agent('hb-1'), timing, T0);
    expect(await registry.heartbeat('hb-1', { health: 'HEALTHY', running: 2, responseTimeMs: 12.4 }, timing, T0 + 900)).toBe('ok');
    const view = await registry.get('hb-1', T0 + 1500);
    expect(view).toMatchObject({ health: 'HEALTHY', running: 2, load: 0.5, responseTimeMs: 12 });
    expect(await registry.expire(T0 + 3500)).not.toContain('hb-1'); // heartbeat at +900 moved expiry to +3900
  });

  it('a silent agent reads UNKNOWN, then is removed after its TTL', async () => {
    await registry.register(agent('silent-1', { tags: ['quiet'] }), timing, T0);
    await registry.heartbeat('silent-1', { health: 'HEALTHY', running: 0 }, timing, T0);
    expect((await registry.get('silent-1', T0 + 1500))!.health).toBe('HEALTHY');
    const lapsed = await registry.get('silent-1', T0 + 2500);
    expect(lapsed).toMatchObject({ health: 'UNKNOWN', healthReason: 'no heartbeat for 2500 ms' });
    expect(await registry.expire(T0 + 3001)).toContain('silent-1');
    expect(await registry.get('silent-1', T0 + 3001)).toBeUndefined();
    expect(await registry.list({ tags: ['quiet'] }, T0 + 3001)).toEqual([]);
    expect(await redis.sismember(keys(prefix).registry.byType('transform'), 'silent-1')).toBe(0);
  });

  it('tells an expired agent to register again', async () => {
    expect(await registry.heartbeat('never-registered', { health: 'HEALTHY', running: 0 }, timing, T0)).toBe('gone');
    expect(await registry.get('never-registered')).toBeUndefined(); // the heartbeat wrote nothing
  });

  it('deregisters at once', async () => {
    await registry.register(agent('bye-1'), timing, T0);
    expect(await registry.deregister('bye-1')).toBe(true);
    expect(await registry.get('bye-1', T0)).toBeUndefined();
    expect(await registry.deregister('bye-1')).toBe(false);
  });

  it('drain is reported to the agent by its next heartbeat', async () => {
    await registry.register(agent('drain-1'), timing, T0);
    expect(await registry.drain('drain-1')).toMatchObject({ id: 'drain-1', draining: true });
    expect(await registry.heartbeat('drain-1', { health: 'HEALTHY', running: 1 }, timing, T0 + 100)).toBe('draining');
    expect(await registry.drain('no-such-agent')).toBeUndefined();
  });
});

describe('queries', () => {
  const t = T0 + 10_000_000;
  it('finds agents by type, pool, health, capability range and tags (AND), in any combination', async () => {
    const reg = async (id: string, over: Partial<Registration>, health: 'HEALTHY' | 'DEGRADED' | 'UNHEALTHY') => {
      await registry.register(agent(id, over), timing, t);
      await registry.heartbeat(id, { health, running: 0 }, timing, t);
    };
    await reg('q-ml', { type: 'infer', pool: 'gpu', tags: ['ml', 'python'], capabilities: [{ name: 'infer', version: '1.4.0' }, { name: 'embed', version: '2.0.0' }] }, 'HEALTHY');
    await reg('q-ml-old', { type: 'infer', pool: 'gpu', tags: ['ml'], capabilities: [{ name: 'infer', version: '1.1.0' }] }, 'DEGRADED');
    await reg('q-py', { type: 'infer', pool: 'cpu', tags: ['python'], capabilities: [{ name: 'infer', version: '2.0.0' }] }, 'UNHEALTHY');

    const ids = async (f: Parameters<Registry['list']>[0]) => (await registry.list(f, t + 10)).map((a) => a.id);
    expect(await ids({ type: 'infer' })).toEqual(['q-ml', 'q-ml-old', 'q-py']);
    expect(await ids({ type: 'infer', pool: 'gpu' })).toEqual(['q-ml', 'q-ml-old']);
    expect(await ids({ tags: ['ml', 'python'] })).toEqual(['q-ml']);
    expect(await ids({ tags: ['python'] })).toEqual(['q-ml', 'q-py']);
    expect(await ids({ capability: parseCapability('infer@^1.2') })).toEqual(['q-ml']);
    expect(await ids({ capability: parseCapability('infer') })).toEqual(['q-ml', 'q-ml-old', 'q-py']);
    expect(await ids({ capability: parseCapability('embed@2') })).toEqual(['q-ml']); // second capability indexed too
    expect(await ids({ type: 'infer', health: ['HEALTHY', 'DEGRADED'] })).toEqual(['q-ml', 'q-ml-old']);
    expect(await ids({ type: 'infer', tags: ['python'], health: ['UNHEALTHY'] })).toEqual(['q-py']);
    expect(await ids({ type: 'nothing' })).toEqual([]);
  });

  it('rejects a capability that is not name@range', () => {
    expect(() => parseCapability('infer@>>1')).toThrow(/name@semver-range/);
    expect(() => parseCapability('Bad@1')).toThrow(/name@semver-range/);
  });
});

describe('housekeeper', () => {
  it('exactly one process runs the chores; another takes over when the holder is killed', async () => {
    const lockKey = keys(prefix).registry.housekeeper;
    // A runs in its own process, so it can really be killed.
    const a = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../support/housekeeper-process.ts', import.meta.url)), REDIS_URL, lockKey, 'A', '600'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((r) => a.once('exit', r));
    try {
      await waitFor(async () => (await redis.get(lockKey)) === 'A', { timeoutMs: 20_000, what: 'A to take the lease' });
      const runs: string[] = [];
      const b = new Housekeeper({ redis, lockKey, owner: 'B', intervalMs: 50, leaseMs: 600, log: silentLog, chores: [{ name: 'note', run: async () => void runs.push('B') }] });
      b.start();
      await new Promise((r) => setTimeout(r, 400));
      expect(b.isLeader).toBe(false);
      expect(runs).toEqual([]);

      a.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      await waitFor(() => b.isLeader, { timeoutMs: 5000, what: 'B to take over once the lease expires' });
      expect(Date.now() - killedAt).toBeLessThan(2000);
      await waitFor(() => runs.length > 0, { what: 'B to run its chores' });
      await b.stop();
      expect(await redis.get(lockKey)).toBeNull(); // a clean stop hands the lease back at once
    } finally {
      a.kill('SIGKILL');
    }
  });
});
