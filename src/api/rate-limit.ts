/**
 * The per-client limit on enqueue routes (SWITCHYARD_RATE_LIMIT tasks per second, bursts of
 * SWITCHYARD_RATE_BURST), kept in Redis so it holds across every API process. A client is its API
 * key (by the key's id: key-ring.ts), or its address when the API runs without keys (whatever token it sends). A request
 * costs the tasks it would enqueue: 1, a batch's length, a workflow's node count. Over the limit:
 * 429 with the exact Retry-After; nothing is enqueued.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { RedisConnection } from '../redis/connection.ts';
import { RateLimitedError, SwitchyardError } from '../model/errors.ts';
import { withRedis } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import { principalOf } from './scopes.ts';

export interface RateLimit {
  /** Tasks per second per client; 0 turns the limit off. */
  perSecond: number;
  /** Tasks a client may send at once after a quiet spell. */
  burst: number;
}

/** How many tasks a request would enqueue, from its parsed body (before validation: a malformed body costs 1). */
export type Cost = (body: unknown) => number;

export const oneTask: Cost = () => 1;
/** The length of an array field of the body (`tasks`, `nodes`), at least 1. */
export const lengthOf =
  (field: string): Cost =>
  (body) => {
    const list = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[field] : undefined;
    return Array.isArray(list) ? Math.max(1, list.length) : 1;
  };

/**
 * With keys configured a request that got here presented a valid key, and the key is the client. Without
 * keys nothing checks a presented token, so a made-up one must not make a new client: the address is.
 */
function clientOf(req: Request, res: Response, keyed: boolean): string {
  return keyed ? `key:${principalOf(res).id}` : `addr:${req.socket.remoteAddress ?? 'unknown'}`;
}

/** Middleware factory: `limit(cost)` guards one route; a no-op when the limit is off. */
export function rateLimiter(redis: RedisConnection, prefix: string, limit: RateLimit, keyed: boolean): (cost: Cost) => RequestHandler {
  if (limit.perSecond <= 0) return () => (_req, _res, next) => next();
  const k = keys(prefix);
  const per = 1000 / limit.perSecond;
  return (cost) => async (req, res, next) => {
    const n = cost(req.body);
    if (n > limit.burst) {
      throw new SwitchyardError(
        'PAYLOAD_TOO_LARGE',
        `this request holds ${n} tasks, more than a client may send at once (SWITCHYARD_RATE_BURST=${limit.burst}); split it into requests of at most ${limit.burst}`,
      );
    }
    const [admitted, value] = await withRedis(redis, () => scripts.rateLimit.run(redis, [k.rateLimit(clientOf(req, res, keyed))], [per.toFixed(6), limit.burst, n]));
    if (admitted === 1) return next();
    throw new RateLimitedError(value, `rate limit: at most ${limit.perSecond} tasks per second per client (bursts of ${limit.burst}); this request of ${n} task(s) fits in ${value} ms, nothing was enqueued`);
  };
}
