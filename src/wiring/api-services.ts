/**
 * The services of an API process, built and stopped in one place: Redis connections, pool queues, the
 * registry, the breaker watch and fleet snapshot the router reads, the producer, lookups, dead letters,
 * cancellation, the workflow engine and runs, schedules, metrics and the acknowledgement audit; then the leased
 * chores (agent expiry; dispatching parked and stranded tasks and sweeping workflow runs). The HTTP
 * layer (api/) is built on top of these; nothing here knows about HTTP.
 *
 * Layer: wiring. Imports engines, stores, redis, config and the model; imported by api/server.ts.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { BreakerWatch } from '../breaker/watch.ts';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { Housekeeper } from '../housekeeping/housekeeper.ts';
import { ApiMetrics } from '../metrics/api-metrics.ts';
import type { Catalogue } from '../model/catalogue.ts';
import { policyOf } from '../model/catalogue.ts';
import { createRedis, type RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { Registry } from '../registry/registry.ts';
import { Dispatcher } from '../routing/dispatcher.ts';
import { DEFAULT_POOL } from '../routing/fixed.ts';
import { FleetRouter } from '../routing/router.ts';
import { FleetSnapshot } from '../routing/snapshot.ts';
import { AckAudit } from '../task/ack-audit.ts';
import { TaskCanceller } from '../task/cancel.ts';
import { DeadLetters } from '../task/dead-letters.ts';
import { TaskLookup } from '../task/lookup.ts';
import { PoolQueues } from '../task/pool-queues.ts';
import { TaskProducer } from '../task/producer.ts';
import { WorkflowEngine } from '../workflow/engine.ts';
import { RunStore } from '../workflow/run-store.ts';
import { WorkflowRuns } from '../workflow/runs.ts';
import { Schedules } from '../schedule/schedules.ts';
import { EventLog, waitingEvents } from '../events/event-log.ts';
import { EventFeed } from '../events/event-feed.ts';
import { CallbackOutbox } from '../callbacks/callback-outbox.ts';
import { CallbackSender } from '../callbacks/callback-sender.ts';
import { LeaseDesk } from '../agent/lease-desk.ts';

const POOL_REFRESH_MS = 5000;
const DISPATCH_INTERVAL_MS = 500;
/** How long start waits for the fleet snapshot before serving anyway (503s until Redis answers). */
const SNAPSHOT_WAIT_MS = 5000;

/** The three connections of an API process: requests fail fast; background work and subscriptions wait out outages. */
export interface ApiConnections {
  redis: RedisConnection;
  background: RedisConnection;
  subscriber: RedisConnection;
  /** The event feed's blocking read (GET /v1/events). */
  eventReader: RedisConnection;
}

export function connectApi(redisUrl: string, log: Logger): ApiConnections {
  const redis = createRedis(redisUrl, 'client', 'switchyard-api');
  let lastRedisError = 0;
  redis.on('error', (err) => {
    if (Date.now() - lastRedisError > 10_000) log.warn({ err: err.message }, 'redis connection error; answering 503 until it returns');
    lastRedisError = Date.now();
  });
  redis.on('ready', () => lastRedisError && log.info('redis connection restored'));
  const background = createRedis(redisUrl, 'blocking', 'switchyard-api-background');
  const subscriber = createRedis(redisUrl, 'blocking', 'switchyard-api-events');
  const eventReader = createRedis(redisUrl, 'blocking', 'switchyard-api-event-feed');
  for (const c of [background, subscriber, eventReader]) c.on('error', () => undefined);
  return { redis, background, subscriber, eventReader };
}

export type ApiServices = Awaited<ReturnType<typeof buildApiServices>>;

/** Builds every service of an API process and starts the ones that read Redis in the background. */
export async function buildApiServices(c: ApiConnections, config: Config, catalogue: Catalogue, log: Logger) {
  const { redis, background, subscriber } = c;
  const eventLog = new EventLog(redis, config.prefix, config.eventsRetentionMs, (err) => log.debug({ err: err.message }, 'could not append to the event log'));
  const events = eventLog.enabled ? new EventFeed(eventLog, c.eventReader, (err) => log.warn({ err: err.message }, 'event feed: could not read the event log; retrying')) : undefined;
  const queues = new PoolQueues(redis, config.prefix);
  for (const t of catalogue.list()) queues.get({ type: t.name, pool: DEFAULT_POOL });
  const registry = new Registry(redis, config.prefix);
  const breakers = new BreakerWatch(background, subscriber, config.prefix, (name) => policyOf(catalogue, name), 1000);
  const backgroundQueues = new PoolQueues(background, config.prefix);
  const snapshot = new FleetSnapshot(new Registry(background, config.prefix), backgroundQueues, breakers, subscriber, config.prefix, log);
  // Route from a loaded snapshot when Redis answers; if it does not yet, serve anyway (503s) and load when it does.
  const loaded = breakers.start().then(() => snapshot.start());
  loaded.catch((err: unknown) => log.error({ err }, 'could not start the fleet snapshot'));
  await Promise.race([loaded.catch(() => undefined), new Promise((r) => setTimeout(r, SNAPSHOT_WAIT_MS).unref())]);
  const router = new FleetRouter(snapshot, catalogue);
  const metrics = new ApiMetrics({
    redis: background, prefix: config.prefix, queues: backgroundQueues, agents: new Registry(background, config.prefix),
    breakers: () => breakers.states(), runQueue: () => engine.runQueue, schedules: () => schedules.store.counts(),
    ...(events ? { eventStreams: () => events.listening } : {}),
  });
  const acks = new AckAudit(redis, config.prefix, queues, log);
  await acks.start().catch(() => undefined); // learns the server's run_id now, or on the first connection
  const producer = new TaskProducer({
    redis, queues, catalogue, router, config, backlog: (type) => snapshot.backlog(type),
    written: (queue, ids) => {
      acks.record(queue, ids);
      metrics.enqueued(queue, ids.length);
      eventLog.append(...waitingEvents(queue, ids));
      desk.wake(queue);
    },
  });
  const runStore = new RunStore(redis, config.prefix);
  const lookup = new TaskLookup(queues, catalogue, redis, config.prefix, registry, (id) => runStore.typeOfJob(id));
  const deadLetters = new DeadLetters(queues, catalogue, router);
  const callbacks = new CallbackOutbox(redis, config.prefix);
  const canceller = new TaskCanceller(redis, config.prefix, queues, lookup, config.keepCompleted.age, eventLog, callbacks);
  const engine = new WorkflowEngine({ redis, subscriber, queues, producer, catalogue, prefix: config.prefix, keepRunsS: config.keepWorkflowsS, log, events: eventLog, callbacks });
  const workflows = new WorkflowRuns({
    redis, prefix: config.prefix, catalogue, engine,
    maxNodes: config.maxWorkflowNodes, idempotencyTtlS: config.idempotencyTtlS, keepRunsS: config.keepWorkflowsS, waitReplicas: config.waitReplicas,
    callbacks: config.callbacks,
  });
  const sender = callbackSender(config, background, log, lookup, workflows, metrics);
  sender?.start();
  await engine.start(background).catch((err: unknown) => log.error({ err }, 'could not start the workflow engine'));
  // The timer reads and writes through the background connection: it waits out a Redis outage.
  // The worker protocol over HTTP: its BullMQ workers and gates wait out outages (the background connection).
  const desk = new LeaseDesk({
    redis: background, subscriber, config, catalogue, registry, events: eventLog, callbacks,
    runs: new RunStore(background, config.prefix, eventLog), log: log.child({ component: 'lease-desk' }),
  });
  const schedules = new Schedules({
    redis: background, prefix: config.prefix, catalogue, producer, runs: workflows, maxNodes: config.maxWorkflowNodes, leaseMs: config.lockMs, log,
    onFire: (fire, delayMs) => metrics.scheduleFired(fire.outcome, delayMs),
  });
  schedules.start();
  return { ...c, eventLog, events, callbacks, sender, catalogue, queues, backgroundQueues, registry, breakers, snapshot, router, metrics, acks, producer, lookup, deadLetters, canceller, engine, workflows, schedules, desk };
}

/** Only API processes deliver callbacks (they hold the secret and the views): the sender, when a secret is set. */
function callbackSender(config: Config, background: RedisConnection, log: Logger, lookup: TaskLookup, workflows: WorkflowRuns, metrics: ApiMetrics): CallbackSender | undefined {
  const secret = config.callbacks.secret;
  if (!secret) return undefined;
  return new CallbackSender({
    connection: background, prefix: config.prefix, secret, log,
    views: { task: (id) => lookup.find(id), run: (id) => workflows.view(id, { offset: 0, limit: 1000 }) },
    onOutcome: (outcome) => metrics.callback(outcome),
  });
}

/** The leased chores an API process competes for, started; and the pool list refresh. */
export function startApiChores(s: ApiServices, config: Config, log: Logger) {
  const owner = `api-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const expiring = new Registry(s.background, config.prefix);
  const housekeeper = new Housekeeper({
    redis: s.background,
    lockKey: keys(config.prefix).registry.housekeeper,
    owner,
    intervalMs: config.heartbeatMs,
    leaseMs: 3 * config.heartbeatMs,
    chores: [{ name: 'expire agents', run: (now) => expiring.expire(now).then(() => undefined) }],
    log,
  });
  const dispatcher = new Dispatcher({
    queues: s.backgroundQueues, router: s.router, snapshot: s.snapshot, catalogue: s.catalogue, log, graceMs: config.rerouteGraceMs,
    stalled: { connection: s.background, prefix: config.prefix, lockMs: config.lockMs, stalledIntervalMs: config.stalledIntervalMs, maxStalled: config.maxStalled },
  });
  // Only API processes hold the fleet snapshot, so only they compete for the dispatch lease.
  const dispatch = new Housekeeper({
    redis: s.background,
    lockKey: keys(config.prefix).dispatcher,
    owner,
    intervalMs: DISPATCH_INTERVAL_MS,
    leaseMs: 5 * DISPATCH_INTERVAL_MS,
    chores: [
      { name: 'dispatch parked and stranded tasks', run: (now) => dispatcher.run(now) },
      { name: 'sweep workflow runs', run: (now) => s.engine.sweep(now) },
    ],
    log,
  });
  housekeeper.start();
  dispatch.start();
  const refresh = () => void s.queues.refresh().catch(() => {});
  refresh();
  const refresher = setInterval(refresh, POOL_REFRESH_MS).unref();
  return {
    /** Stops the chores, then every service (stopApiServices). */
    async stop(): Promise<void> {
      clearInterval(refresher);
      await Promise.all([housekeeper.stop(), dispatch.stop()]);
      await dispatcher.close();
      await stopApiServices(s);
    },
  };
}

/** Stops every service of buildApiServices, in the order their dependencies need, and closes the connections. */
export async function stopApiServices(s: ApiServices): Promise<void> {
  s.acks.stop();
  await s.events?.stop();
  await Promise.all([s.snapshot.stop(), s.breakers.stop()]);
  await s.schedules.stop(); // fires start tasks and runs: stopped before what they use
  await s.desk.close();
  await Promise.all([s.engine.stop(), s.workflows.close(), s.sender?.close()]);
  await s.callbacks.close();
  await Promise.all([s.queues.close(), s.backgroundQueues.close(), s.eventLog.flush()]);
  await Promise.all([s.redis, s.background, s.subscriber].map((c) => c.quit().catch(() => c.disconnect())));
  s.eventReader.disconnect();
}
