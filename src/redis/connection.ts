/**
 * Redis connections with BullMQ's production settings.
 * - `blocking` (agents, BullMQ Workers): never give up on a command, reconnect forever
 *   (BullMQ requires maxRetriesPerRequest: null for blocking connections).
 * - `client` (the API, producers): fail fast while Redis is down, so a request gets a 503
 *   at once instead of hanging in an offline queue; reconnects in the background.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { RedisUnavailableError } from '../errors.ts';

export type ConnectionRole = 'blocking' | 'client';

export function redisOptions(role: ConnectionRole): RedisOptions {
  const reconnect = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000);
  return role === 'blocking'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: reconnect }
    : {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        connectTimeout: 2000,
        commandTimeout: 5000,
        retryStrategy: reconnect,
      };
}

export function createRedis(url: string, role: ConnectionRole, name?: string): Redis {
  return new Redis(url, { ...redisOptions(role), ...(name ? { connectionName: name } : {}) });
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
];

/** True when `err` means "Redis cannot be reached" rather than "the command was wrong". */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const text = `${err.name} ${err.message} ${(err as { code?: unknown }).code ?? ''}`;
  return CONNECTION_ERRORS.some((c) => text.includes(c));
}

/** Runs `fn`, turning connection failures into RedisUnavailableError (HTTP 503). */
export async function withRedis<T>(redis: Redis, fn: () => Promise<T>): Promise<T> {
  if (redis.status !== 'ready') throw new RedisUnavailableError(`redis connection is ${redis.status}`);
  try {
    return await fn();
  } catch (err) {
    throw isConnectionError(err) ? new RedisUnavailableError(err) : err;
  }
}

/** Waits until the connection is ready, or rejects after `timeoutMs`. */
export async function waitForReady(redis: Redis, timeoutMs: number): Promise<void> {
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
