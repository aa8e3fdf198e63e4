/** GET /v1/breakers and POST /v1/breakers/:type/:pool/reset. */
import type { RedisConnection } from '../../redis/connection.ts';
import { policyOf, type Catalogue } from '../../model/catalogue.ts';
import { readBreaker, SharedBreaker } from '../../breaker/breaker.ts';
import { keys } from '../../redis/keys.ts';
import { poolBreakerName } from '../../model/names.ts';
import { poolName } from '../../model/task-request.ts';
import { parseOrThrow } from '../../model/validation.ts';
import type { Reply } from '../problem.ts';

export async function listBreakers(redis: RedisConnection, prefix: string, catalogue: Catalogue): Promise<Reply> {
  const k = keys(prefix).breaker;
  const names = (await redis.smembers(k.index)).sort();
  const views = await Promise.all(names.map((n) => readBreaker(redis, k, n, policyOf(catalogue, n))));
  return { status: 200, body: views };
}

export async function resetBreaker(redis: RedisConnection, prefix: string, catalogue: Catalogue, type: string, pool: string): Promise<Reply> {
  const t = catalogue.get(type);
  // A malformed name would otherwise create (and index) a breaker no pool can ever use.
  parseOrThrow(poolName, pool, 'pool', 'pool');
  const breaker = new SharedBreaker(redis, prefix, poolBreakerName({ type: t.name, pool }), t.breaker);
  await breaker.reset();
  return { status: 200, body: await breaker.read() };
}
