/**
 * vitest globalSetup of the cluster suite (vitest.cluster.config.ts): starts a loopback Redis
 * Cluster of 3 masters from the installed redis-server, points every test at it through
 * REDIS_URL=redis+cluster://..., and stops it after the run.
 */
import { startLocalCluster, type LocalCluster } from '../../src/redis/local-cluster.ts';
import { clusterUrl } from '../../src/config/redis-url.ts';

let cluster: LocalCluster | undefined;

export async function setup(): Promise<void> {
  cluster = await startLocalCluster({ masters: 3 });
  // Forked test workers (and the processes they start) inherit it.
  process.env.REDIS_URL = clusterUrl(cluster.nodes);
  console.log(`[tests] Redis Cluster of 3 masters: ${process.env.REDIS_URL}`);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
