/** Liveness (the process answers) and readiness (Redis answers a PING within a second). */
import type { RedisConnection } from '../../redis/connection.ts';
import { RedisUnavailableError } from '../../model/errors.ts';
import { withRedis } from '../../redis/connection.ts';
import type { Reply } from '../problem.ts';

export const healthz = (): Reply => ({ status: 200, body: { status: 'ok' } });

export async function readyz(redis: RedisConnection): Promise<Reply> {
  const ping = withRedis(redis, () => redis.ping());
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new RedisUnavailableError('PING timed out')), 1000).unref());
  await Promise.race([ping, timeout]);
  return { status: 200, body: { status: 'ready', redis: 'ok' } };
}
