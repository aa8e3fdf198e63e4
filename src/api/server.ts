/** Builds the API's real parts (Redis client, pool queues, producer, lookup), serves them, and stops cleanly. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Catalogue } from '../agent-type/catalogue.ts';
import type { Config } from '../config/env.ts';
import { SwitchyardError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { createRedis } from '../redis/connection.ts';
import { DEFAULT_POOL, fixedRouter } from '../routing/fixed.ts';
import { TaskLookup } from '../task/lookup.ts';
import { PoolQueues } from '../task/pool-queues.ts';
import { TaskProducer } from '../task/producer.ts';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Housekeeper } from '../housekeeping/housekeeper.ts';
import { keys } from '../redis/keys.ts';
import { Registry } from '../registry/registry.ts';
import { createApp } from './app.ts';
import { isLoopback } from './auth.ts';

export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const POOL_REFRESH_MS = 5000;

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopback(host);
}

export async function startApi(opts: { config: Config; catalogue: Catalogue; redisUrl: string; log: Logger }): Promise<ApiServer> {
  const { config, catalogue, log } = opts;
  if (config.apiKeys.length === 0 && !isLoopbackHost(config.host)) {
    throw new SwitchyardError(
      'CONFIG_INVALID',
      `refusing to listen on HOST=${config.host} without API keys: set SWITCHYARD_API_KEYS=<key>[,<key>...] or HOST=127.0.0.1`,
    );
  }
  const redis = createRedis(opts.redisUrl, 'client', 'switchyard-api');
  let lastRedisError = 0;
  redis.on('error', (err) => {
    if (Date.now() - lastRedisError > 10_000) log.warn({ err: err.message }, 'redis connection error; answering 503 until it returns');
    lastRedisError = Date.now();
  });
  redis.on('ready', () => lastRedisError && log.info('redis connection restored'));

  const queues = new PoolQueues(redis, config.prefix);
  for (const t of catalogue.list()) queues.get({ type: t.name, pool: DEFAULT_POOL });
  const producer = new TaskProducer({ redis, queues, catalogue, router: fixedRouter, config });
  const registry = new Registry(redis, config.prefix);
  const lookup = new TaskLookup(queues, catalogue, redis, registry);
  const app = createApp({ config, redis, queues, producer, lookup, catalogue, registry, log });
  // Any process may do the housekeeping; the one holding the lease does.
  const housekeeper = new Housekeeper({
    redis,
    lockKey: keys(config.prefix).registry.housekeeper,
    owner: `api-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    intervalMs: config.heartbeatMs,
    leaseMs: 3 * config.heartbeatMs,
    chores: [{ name: 'expire agents', run: (now) => registry.expire(now).then(() => undefined) }],
    log,
  });
  housekeeper.start();

  const refresh = () => void queues.refresh().catch(() => {});
  refresh();
  const refresher = setInterval(refresh, POOL_REFRESH_MS).unref();

  const server: Server = createServer(app);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (config.apiKeys.length === 0) log.warn('no SWITCHYARD_API_KEYS set: serving loopback clients only, without a key');
  log.info({ url }, 'api listening');

  return {
    url,
    port,
    async close() {
      clearInterval(refresher);
      await housekeeper.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
