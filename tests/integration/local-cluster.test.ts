/** The loopback Redis Cluster that cluster tests and the cluster benchmark will run on (issue 10): it starts, serves every slot, and stops. */
import { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type LocalCluster } from '../../src/redis/local-cluster.ts';

let cluster: LocalCluster | undefined;
afterAll(async () => cluster?.stop());

describe('startLocalCluster', () => {
  it('starts 3 masters that serve all 16 384 slots, reachable through an ioredis Cluster', async () => {
    cluster = await startLocalCluster({ masters: 3 });
    expect(cluster.nodes).toHaveLength(3);
    const client = new Cluster(cluster.nodes.map((n) => ({ host: n.split(':')[0]!, port: Number(n.split(':')[1]) })));
    try {
      // Keys in different slots land on different masters; a hash tag keeps a multi-key command in one slot.
      for (let i = 0; i < 30; i++) await client.set(`k${i}`, String(i));
      expect(await client.get('k17')).toBe('17');
      expect(await client.mget('{t}:a', '{t}:b')).toEqual([null, null]);
      const masters = await Promise.all(client.nodes('master').map((n) => n.dbsize()));
      expect(masters.filter((n) => n > 0).length).toBeGreaterThan(1);
    } finally {
      client.disconnect();
    }
  });
});
