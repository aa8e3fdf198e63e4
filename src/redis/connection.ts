/**
 * Redis connections with BullMQ's production settings.
 * - `blocking` (agents, BullMQ Workers): never give up on a command, reconnect forever
 *   (BullMQ requires maxRetriesPerRequest: null for blocking connections).
 * - `client` (the API, producers): fail fast while Redis is down, so a request gets a 503
 *   at once instead of hanging in an offline queue; reconnects in the background. A Redis that
 *   accepts connections but does not answer is bounded per request by withRedis (one timer per
 *   request: ioredis's commandTimeout would start one per command, a thousand for a batch).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { RedisUnavailableError } from '../errors.ts';

export type ConnectionRole = 'blocking' | 'client';

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

/** How long a request may wait on Redis before it is answered 503. */
export const REQUEST_DEADLINE_MS = 5000;

/**
 * Runs `fn`, turning connection failures, and a Redis that does not answer within `deadlineMs`,
 * into RedisUnavailableError (HTTP 503). A write that was sent may still land after the deadline:
 * the request was not acknowledged, and a retry with the same idempotencyKey finds it.
 */
export async function withRedis<T>(redis: Redis, fn: () => Promise<T>, deadlineMs = REQUEST_DEADLINE_MS): Promise<T> {
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
