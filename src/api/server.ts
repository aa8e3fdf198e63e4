/**
 * The API process, wired in one place: Redis connections, pool queues, the registry, the breaker
 * watch and fleet snapshot the router reads, the producer and lookup, housekeeping (agent expiry)
 * and the dispatcher (parked and stranded tasks), then the HTTP app. Stops cleanly.
 */
import { randomBytes } from 'node:crypto';
import { STATUS_CODES, type Server } from 'node:http';
import type { Express, RequestHandler } from 'express';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Catalogue } from '../model/catalogue.ts';
import { BreakerWatch } from '../breaker/watch.ts';
import type { Config } from '../config/env.ts';
import { Housekeeper } from '../housekeeping/housekeeper.ts';
import type { Logger } from '../config/logger.ts';
import { createRedis } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { poolBreakerName } from '../model/names.ts';
import { Registry } from '../registry/registry.ts';
import { Dispatcher } from '../routing/dispatcher.ts';
import { DEFAULT_POOL } from '../routing/fixed.ts';
import { FleetRouter } from '../routing/router.ts';
import { FleetSnapshot } from '../routing/snapshot.ts';
import { TaskLookup } from '../task/lookup.ts';
import { DeadLetters } from '../task/dead-letters.ts';
import { TaskCanceller } from '../task/cancel.ts';
import { PoolQueues } from '../task/pool-queues.ts';
import { TaskProducer } from '../task/producer.ts';
import { WorkflowEngine } from '../workflow/engine.ts';
import { WorkflowRuns } from '../workflow/runs.ts';
import { RunStore } from '../workflow/run-store.ts';
import { checkDurability } from '../redis/durability.ts';
import { AckAudit } from '../task/ack-audit.ts';
import { ApiMetrics } from '../metrics/api-metrics.ts';
import { VERSION } from '../version.ts';
import { createApp } from './app.ts';
import { limitedServer } from './connections.ts';
import { assertLoopbackListen } from './host-check.ts';
import { policyOf } from './routes/breakers.ts';

export interface ApiServer {
  url: string;
  port: number;
  /** The Express app, for tests that walk its routes. */
  app: Express;
  close(): Promise<void>;
}

const POOL_REFRESH_MS = 5000;
const DISPATCH_INTERVAL_MS = 500;
/** On shutdown, requests still running after this long are cut off. */
const CLOSE_DEADLINE_MS = 10_000;

/**
 * A request Node refuses before Express sees it (malformed HTTP, headers over 16 KiB) still gets
 * problem+json, as every other error does; a connection already gone is just closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, detail, type] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request headers (URL included) are larger than the server accepts', 'bad-request']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request did not arrive in time (SWITCHYARD_HEADERS_TIMEOUT_MS for its head, SWITCHYARD_REQUEST_TIMEOUT_MS for all of it)', 'request-timeout']
        : [400, 'the request is not valid HTTP', 'bad-request'];
  const body = JSON.stringify({ type: `/problems/${type}`, title: STATUS_CODES[status], status, detail });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/problem+json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export interface StartApiOptions {
  config: Config;
  catalogue: Catalogue;
  redisUrl: string;
  log: Logger;
  /** The /dashboard page to mount (cli/modules.ts loadDashboard); without it, no dashboard. */
  dashboard?: RequestHandler;
}

export async function startApi(opts: StartApiOptions): Promise<ApiServer> {
  const { config, catalogue, log } = opts;
  if (config.apiKeys.length === 0) await assertLoopbackListen(config.host);
  const redis = createRedis(opts.redisUrl, 'client', 'switchyard-api');
  let lastRedisError = 0;
  redis.on('error', (err) => {
    if (Date.now() - lastRedisError > 10_000) log.warn({ err: err.message }, 'redis connection error; answering 503 until it returns');
    lastRedisError = Date.now();
  });
  redis.on('ready', () => lastRedisError && log.info('redis connection restored'));
  // Background work (subscriptions, snapshot, housekeeping) waits out outages instead of failing fast.
  const background = createRedis(opts.redisUrl, 'blocking', 'switchyard-api-background');
  const subscriber = createRedis(opts.redisUrl, 'blocking', 'switchyard-api-events');
  for (const c of [background, subscriber]) c.on('error', () => undefined);

  const queues = new PoolQueues(redis, config.prefix);
  for (const t of catalogue.list()) queues.get({ type: t.name, pool: DEFAULT_POOL });
  const registry = new Registry(redis, config.prefix);
  const breakers = new BreakerWatch(background, subscriber, config.prefix, (name) => policyOf(catalogue, name), 1000);
  const backgroundQueues = new PoolQueues(background, config.prefix);
  const snapshot = new FleetSnapshot(new Registry(background, config.prefix), backgroundQueues, breakers, subscriber, config.prefix, log);
  // Route from a loaded snapshot when Redis answers; if it does not yet, serve anyway (503s) and load when it does.
  const loaded = breakers.start().then(() => snapshot.start());
  loaded.catch((err: unknown) => log.error({ err }, 'could not start the fleet snapshot'));
  await Promise.race([loaded.catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
  const router = new FleetRouter(snapshot, catalogue);
  const metrics = new ApiMetrics({
    redis: background, prefix: config.prefix, queues: backgroundQueues, agents: new Registry(background, config.prefix),
    breakers: () => breakers.states(), runQueue: () => engine.runQueue,
  });
  const acks = new AckAudit(redis, config.prefix, queues, log);
  await acks.start().catch(() => undefined); // learns the server's run_id now, or on the first connection
  const producer = new TaskProducer({
    redis, queues, catalogue, router, config, backlog: (type) => snapshot.backlog(type),
    written: (queue, ids) => {
      acks.record(queue, ids);
      metrics.enqueued(queue, ids.length);
    },
  });
  const runStore = new RunStore(redis, config.prefix);
  const lookup = new TaskLookup(queues, catalogue, redis, config.prefix, registry, (id) => runStore.typeOfJob(id));
  const deadLetters = new DeadLetters(queues, catalogue, router);
  const canceller = new TaskCanceller(redis, config.prefix, queues, lookup, config.keepCompleted.age);
  const engine = new WorkflowEngine({ redis, subscriber, queues, producer, catalogue, prefix: config.prefix, keepRunsS: config.keepWorkflowsS, log });
  const workflows = new WorkflowRuns({
    redis, prefix: config.prefix, catalogue, engine,
    maxNodes: config.maxWorkflowNodes, idempotencyTtlS: config.idempotencyTtlS, keepRunsS: config.keepWorkflowsS, waitReplicas: config.waitReplicas,
  });
  await engine.start(background).catch((err: unknown) => log.error({ err }, 'could not start the workflow engine'));
  const app = createApp({
    config, redis, queues, producer, lookup, catalogue, registry, deadLetters, canceller, workflows, boardQueues: [engine.runQueue],
    breakerState: (ref) => breakers.state(poolBreakerName(ref)),
    log,
    version: VERSION,
    metrics,
    ...(opts.dashboard ? { dashboard: opts.dashboard } : {}),
  });

  const owner = `api-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const backgroundRegistry = new Registry(background, config.prefix);
  const housekeeper = new Housekeeper({
    redis: background,
    lockKey: keys(config.prefix).registry.housekeeper,
    owner,
    intervalMs: config.heartbeatMs,
    leaseMs: 3 * config.heartbeatMs,
    chores: [{ name: 'expire agents', run: (now) => backgroundRegistry.expire(now).then(() => undefined) }],
    log,
  });
  const dispatcher = new Dispatcher({
    queues: backgroundQueues, router, snapshot, catalogue, log, graceMs: config.rerouteGraceMs,
    stalled: { connection: background, prefix: config.prefix, lockMs: config.lockMs, stalledIntervalMs: config.stalledIntervalMs, maxStalled: config.maxStalled },
  });
  // Only API processes hold the fleet snapshot, so only they compete for the dispatch lease.
  const dispatch = new Housekeeper({
    redis: background,
    lockKey: keys(config.prefix).dispatcher,
    owner,
    intervalMs: DISPATCH_INTERVAL_MS,
    leaseMs: 5 * DISPATCH_INTERVAL_MS,
    chores: [
      { name: 'dispatch parked and stranded tasks', run: (now) => dispatcher.run(now) },
      { name: 'sweep workflow runs', run: (now) => engine.sweep(now) },
    ],
    log,
  });
  housekeeper.start();
  dispatch.start();

  const refresh = () => void queues.refresh().catch(() => {});
  refresh();
  const refresher = setInterval(refresh, POOL_REFRESH_MS).unref();

  const server: Server = limitedServer(app, config.connections);
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (config.apiKeys.length === 0) log.warn('no SWITCHYARD_API_KEYS set: serving loopback clients only, without a key');
  void checkDurability(redis).then(
    ({ problems }) => problems.forEach((p) => log.warn(p)),
    () => undefined,
  );
  log.info({ url }, 'api listening');

  return {
    url,
    port,
    app,
    async close() {
      // Stop accepting first, and answer what is in flight while everything it needs still runs.
      // Keep-alive connections that finish a request later would hold close() for the whole
      // keep-alive timeout: close each one as soon as it is idle, and all of them after a deadline.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const deadline = setTimeout(() => server.closeAllConnections(), CLOSE_DEADLINE_MS);
        server.once('close', () => {
          clearInterval(idle);
          clearTimeout(deadline);
        });
      });
      clearInterval(refresher);
      acks.stop();
      await Promise.all([housekeeper.stop(), dispatch.stop(), snapshot.stop(), breakers.stop()]);
      await dispatcher.close();
      await Promise.all([engine.stop(), workflows.close()]);
      await Promise.all([queues.close(), backgroundQueues.close()]);
      await Promise.all([redis, background, subscriber].map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
