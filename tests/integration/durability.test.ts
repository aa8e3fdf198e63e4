/** The start-up check of the Redis's eviction policy and persistence, against redis-servers this file starts. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDurability } from '../../src/redis/durability.ts';
import { spawnRedis } from '../../src/redis/embedded.ts';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-durability-'));
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

async function check(args: string[], name: string) {
  const server = await spawnRedis({ dataDir: join(dir, name), args });
  stops.push(() => server.stop());
  const client = new Redis(server.url);
  stops.push(async () => void client.disconnect());
  return checkDurability(client);
}

describe('Redis durability check', () => {
  it('is quiet for AOF fsynced always and noeviction', async () => {
    expect(await check([], 'good')).toEqual({ problems: [], checked: true });
  });

  it('names an evicting policy and missing persistence, with what to set', async () => {
    const r = await check(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no'], 'bad');
    expect(r.problems).toEqual([
      expect.stringMatching(/maxmemory-policy is allkeys-lru.*set maxmemory-policy noeviction/),
      expect.stringMatching(/no persistence.*set appendonly yes/),
    ]);
  });

  it('names an AOF that is not fsynced before each reply', async () => {
    const r = await check(['--appendfsync', 'everysec'], 'everysec');
    expect(r.problems).toEqual([expect.stringMatching(/appendfsync is everysec.*set appendfsync always/)]);
  });

  it('says nothing when CONFIG is not allowed (managed services)', async () => {
    expect(await check(['--rename-command', 'CONFIG', '""'], 'managed')).toEqual({ problems: [], checked: false });
  });
});
