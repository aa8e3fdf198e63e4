/** Builds Switchyard's parts in-process around a test prefix: the same wiring as the API server. */
import { afterAll } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { loadConfig, type Config } from '../../src/config/env.ts';
import { createLogger } from '../../src/config/logger.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { fixedRouter } from '../../src/routing/fixed.ts';
import { TaskLookup } from '../../src/task/lookup.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import demoTypes from '../../queues/index.ts';
import { REDIS_URL } from './redis.ts';
import { waitFor } from './wait.ts';

export const silentLog = createLogger({ logLevel: 'silent', logPretty: false });

export function testConfig(prefix: string, overrides: Partial<Config> = {}): Config {
  return loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent' }, { lockMs: 2000, stalledIntervalMs: 1000, ...overrides });
}

export function producerSystem(prefix: string, opts: { redisUrl?: string; config?: Partial<Config>; catalogue?: Catalogue } = {}) {
  const config = testConfig(prefix, opts.config);
  const redis = createRedis(opts.redisUrl ?? REDIS_URL, 'client');
  redis.on('error', () => {});
  const catalogue = opts.catalogue ?? new Catalogue(demoTypes);
  const queues = new PoolQueues(redis, prefix);
  const producer = new TaskProducer({ redis, queues, catalogue, router: fixedRouter, config });
  const lookup = new TaskLookup(queues, catalogue, redis, prefix);
  afterAll(async () => {
    await queues.close();
    redis.disconnect();
  });
  const ready = waitFor(() => redis.status === 'ready', { what: 'redis client ready' });
  return { config, redis, catalogue, queues, producer, lookup, ready };
}
