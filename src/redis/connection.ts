/**
 * Redis connections with BullMQ's production settings.
 * - `blocking` (agents, BullMQ Workers): never give up on a command, reconnect forever
 *   (BullMQ requires maxRetriesPerRequest: null for blocking connections).
 * - `client` (the API, producers): fail fast while Redis is down, so a request gets a 503
 *   at once instead of hanging in an offline queue; reconnects in the background. A Redis that
 *   accepts connections but does not answer is bounded per request by withRedis (one timer per
 *   request: ioredis's commandTimeout would start one per command, a thousand for a batch).
 */
import { parseClusterUrl } from '../config/redis-url.ts';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { RedisUnavailableError } from '../model/errors.ts';

export type ConnectionRole = 'blocking' | 'client';

/** A connection to one Redis or to a Redis Cluster: everything in Switchyard takes either. */
export type RedisConnection = Redis | Cluster;

export function redisOptions(role: ConnectionRole): RedisOptions {
  // Back off to one attempt a second: cheap for a Redis that is down, and work resumes within about a second of its return.
  const reconnect = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 1000);
  return role === 'blocking'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: reconnect }
    : {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        connectTimeout: 2000,
        retryStrategy: reconnect,
      };
}

/**
 * A connection for `role` to the Redis or cluster `url` names. On a cluster, reads go to masters
 * (a task just written must be readable), and the client keeps trying through a failover as it
 * does through a restart: `client` connections fail fast meanwhile, `blocking` ones wait.
 */
export function createRedis(url: string, role: ConnectionRole, name?: string): RedisConnection {
  const options: RedisOptions = { ...redisOptions(role), ...(name ? { connectionName: name } : {}) };
  const cluster = parseClusterUrl(url);
  if (!cluster) return new Redis(url, options);
  const { enableOfflineQueue, enableReadyCheck, retryStrategy, ...perNode } = options;
  const clusterOptions: ClusterOptions = {
    scaleReads: 'master',
    clusterRetryStrategy: (times) => retryStrategy?.(times) ?? 1000,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(enableReadyCheck === undefined ? {} : { enableReadyCheck }),
    redisOptions: {
      ...perNode,
      ...(cluster.username ? { username: cluster.username } : {}),
      ...(cluster.password ? { password: cluster.password } : {}),
      ...(cluster.tls ? { tls: {} } : {}),
    },
  };
  return new Cluster(cluster.nodes, clusterOptions);
}

/** The masters of a cluster, or the one Redis: where a per-server command (INFO, CONFIG, SCAN) must go. */
export function masters(redis: RedisConnection): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

export const isCluster = (redis: RedisConnection): redis is Cluster => redis instanceof Cluster;

/** The hash slot of a key (0 on a single Redis, where slots do not matter). */
export const slotOf = (redis: RedisConnection, key: string): number => (isCluster(redis) ? calculateSlot(key) : 0);

/**
 * Runs one command per item in as few round trips as the server allows: one pipeline on a single
 * Redis, one per hash slot on a cluster (a cluster pipeline must stay on one node). Replies come
 * back in the items' order; a failed command rejects.
 */
export async function pipelineByKey<T>(
  redis: RedisConnection,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipe: ReturnType<RedisConnection['pipeline']>, item: T) => void,
): Promise<unknown[]> {
  const groups = new Map<number, number[]>();
  items.forEach((item, i) => {
    const slot = slotOf(redis, keyOf(item));
    const g = groups.get(slot);
    if (g) g.push(i);
    else groups.set(slot, [i]);
  });
  const out: unknown[] = new Array(items.length);
  await Promise.all(
    [...groups.values()].map(async (indices) => {
      const pipe = redis.pipeline();
      for (const i of indices) add(pipe, items[i]!);
      const replies = (await pipe.exec()) ?? [];
      indices.forEach((i, j) => {
        const [err, value] = replies[j] ?? [new Error('no reply')];
        if (err) throw err;
        out[i] = value;
      });
    }),
  );
  return out;
}

const CONNECTION_ERRORS = [
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'Connection is closed',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'Command timed out',
  'connect ETIMEDOUT',
  'Socket closed unexpectedly',
  // A cluster in the middle of a failover, or whose slots the client cannot learn.
  'CLUSTERDOWN',
  'TRYAGAIN',
  'Failed to refresh slots cache',
  'None of startup nodes is available',
  "Cluster isn't ready",
  'Too many Cluster redirections',
];

/** True when `err` means "Redis cannot be reached" rather than "the command was wrong". */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const text = `${err.name} ${err.message} ${(err as { code?: unknown }).code ?? ''}`;
  return CONNECTION_ERRORS.some((c) => text.includes(c));
}

/** How long a request may wait on Redis before it is answered 503. */
export const REQUEST_DEADLINE_MS = 5000;

/**
 * Runs `fn`, turning connection failures, and a Redis that does not answer within `deadlineMs`,
 * into RedisUnavailableError (HTTP 503). A write that was sent may still land after the deadline:
 * the request was not acknowledged, and a retry with the same idempotencyKey finds it.
 */
export async function withRedis<T>(redis: RedisConnection, fn: () => Promise<T>, deadlineMs = REQUEST_DEADLINE_MS): Promise<T> {
  if (redis.status !== 'ready') throw new RedisUnavailableError(`redis connection is ${redis.status}`);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(new Error(`no answer from Redis within ${deadlineMs} ms`))), deadlineMs);
  });
  try {
    return await Promise.race([fn(), deadline]);
  } catch (err) {
    throw isConnectionError(err) ? new RedisUnavailableError(err) : err;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the connection is ready, or rejects after `timeoutMs`. */
export async function waitForReady(redis: RedisConnection, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new RedisUnavailableError(`no ready connection within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
