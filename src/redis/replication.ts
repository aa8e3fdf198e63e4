/**
 * Acknowledge only what replicas hold too (SWITCHYARD_WAIT_REPLICAS). Replication is asynchronous:
 * a master that dies right after a write can lose it to the replica that takes over, even with
 * `appendfsync always`. WAIT on the connection that made the writes blocks until `count` replicas
 * confirmed everything that connection sent before it, or the timeout passes. On a cluster it is
 * sent to the master of each slot written to, over the cluster client's own connection to it.
 */
import type { ReplicaWait } from '../config/redis-url.ts';
import type { Redis } from 'ioredis';
import { NotReplicatedError } from '../model/errors.ts';
import { isCluster, slotOf, type RedisConnection } from './connection.ts';


/** The connection to the master serving `key` (on a single Redis, the connection itself). */
export function masterFor(redis: RedisConnection, key: string): Redis | undefined {
  if (!isCluster(redis)) return redis;
  const owner = redis.slots[slotOf(redis, key)]?.[0];
  return redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
}

/**
 * Waits until `wait.count` replicas hold every write made so far through `redis` to the masters of
 * `keys`; throws NotReplicatedError (HTTP 503) when fewer confirm within the timeout.
 */
export async function waitForReplicas(redis: RedisConnection, keys: readonly string[], wait: ReplicaWait): Promise<void> {
  if (wait.count <= 0 || keys.length === 0) return;
  const nodes = new Set<Redis>();
  for (const k of keys) {
    const node = masterFor(redis, k);
    if (!node) throw new NotReplicatedError(0, wait.count, wait.timeoutMs);
    nodes.add(node);
  }
  const confirmed = await Promise.all([...nodes].map((n) => n.call('WAIT', wait.count, wait.timeoutMs) as Promise<number>));
  const least = Math.min(...confirmed);
  if (least < wait.count) throw new NotReplicatedError(least, wait.count, wait.timeoutMs);
}
