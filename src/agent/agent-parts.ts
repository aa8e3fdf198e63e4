/**
 * The parts of an agent, built in one place: its two Redis connections (connectAgent), its identity
 * and registry record, the registry, the pool gate, the health check and monitor, the in-flight
 * attempts, the BullMQ Worker running createProcessor (with a RunStore to settle workflow nodes), its
 * metrics, its presence, and the Housekeeper with the leased 'expire agents' chore (buildAgentParts).
 * Nothing here starts anything: Agent (agent.ts) runs the lifecycle over these parts (boot order,
 * pulling and pausing on health and breaker changes, close) and hands them its AgentHooks.
 *
 * Layer: engines (src/agent/), not wiring. `Agent.start` is the public way to start an agent (index.ts,
 * the CLI and the tests call it on the class in agent.ts), so it has to build its parts without an
 * upward import, and one builder serves every caller: a copy of it in src/wiring/ would be the same
 * logic written twice. What the API process gets from src/wiring/api-services.ts (connections, services,
 * chores) an agent gets from here; the shutdown order is Agent.close, which owns the lifecycle.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { defaultCheck, OutcomeWindow } from '../health/check.ts';
import { HealthMonitor } from '../health/monitor.ts';
import { Housekeeper } from '../housekeeping/housekeeper.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { AgentRecord } from '../model/agent-record.ts';
import type { AgentType } from '../model/agent-type.ts';
import { poolLabel, queueName } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { createRedis, type RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { Registry, type HeartbeatReport } from '../registry/registry.ts';
import { backoffStrategy } from '../task/backoff-strategy.ts';
import { KeySlots } from '../task/key-slots.ts';
import { defer } from '../task/deferral.ts';
import { RunStore } from '../workflow/run-store.ts';
import { InFlight } from './in-flight.ts';
import { PoolGate } from './pool-gate.ts';
import { Presence } from './presence.ts';
import { createProcessor, TIMEOUT, type TaskSteps } from './processor.ts';
import { BatchedWorker } from './batched-worker.ts';
import { DEFAULT_EVENTS_RETENTION_MS } from '../config/env.ts';
import { EventLog } from '../events/event-log.ts';
import { MapItemRunner } from './map-items.ts';
import { CallbackOutbox } from '../callbacks/callback-outbox.ts';
import type { WorkerDefinition } from './worker-definition.ts';

export type AgentConfig = Pick<
  Config,
  | 'prefix' | 'lockMs' | 'stalledIntervalMs' | 'maxStalled' | 'shutdownGraceMs' | 'heartbeatMs' | 'agentTtlMs'
  | 'health' | 'readyTimeoutMs' | 'concurrency' | 'pool' | 'weight' | 'tags'
> & Partial<Pick<Config, 'eventsRetentionMs' | 'prefetch'>>;

export interface AgentOptions {
  definition: WorkerDefinition;
  redisUrl: string;
  config: AgentConfig;
  log: Logger;
  /** Each defaults to the config (SWITCHYARD_POOL, _CONCURRENCY, _WEIGHT, _TAGS). */
  pool?: string;
  concurrency?: number;
  weight?: number;
  tags?: readonly string[];
  metadata?: Record<string, unknown>;
}

/** An agent's connections: commands and its worker (blocking), and the subscriber of task and breaker events. */
export interface AgentConnections {
  redis: RedisConnection;
  subscriber: RedisConnection;
}

/** What the lifecycle (Agent) tells the parts, and is told by them. */
export interface AgentHooks {
  /** The pool's breaker changed, or a drain was requested: pulling may have to stop or resume. */
  pullingMayChange(): void;
  /** The health and load a heartbeat reports. */
  report(): HeartbeatReport;
  /** A task's handler started, and finished. */
  started(): void;
  finished(): void;
}

/** Who an agent is: its id, type, pool, registry record, and its logger. */
export interface AgentIdentity {
  id: string;
  type: AgentType;
  pool: string;
  record: AgentRecord;
  log: Logger;
}

export interface AgentParts extends AgentIdentity {
  config: AgentConfig;
  connections: AgentConnections;
  registry: Registry;
  gate: PoolGate;
  /** Slots of concurrency keys (src/task/key-slots.ts). */
  slots: KeySlots;
  monitor: HealthMonitor;
  /** Stops the health check's own timers, if it has any. */
  stopCheck: () => void;
  inFlight: InFlight;
  worker: BatchedWorker<TaskEnvelope>;
  metrics: AgentMetrics;
  presence: Presence;
  housekeeper: Housekeeper;
  /** Where the agent tells task state changes (GET /v1/events). */
  events: EventLog;
  /** Where the agent queues the callbacks of tasks that end. */
  callbacks: CallbackOutbox;
  /** Adds the map items that follow the ones it settles. */
  items: MapItemRunner;
}

export function connectAgent(redisUrl: string): AgentConnections {
  const redis = createRedis(redisUrl, 'blocking', 'switchyard-agent');
  const subscriber = createRedis(redisUrl, 'blocking', 'switchyard-agent-events');
  return { redis, subscriber };
}

const safeHost = () => hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 60) || 'host';

/** What the registry holds of an agent. */
function agentRecord(id: string, type: AgentType, pool: string, concurrency: number, opts: AgentOptions): AgentRecord {
  const { config } = opts;
  return {
    id,
    type: type.name,
    pool,
    version: type.version,
    capabilities: [{ name: type.name, version: type.version }],
    tags: [...(opts.tags ?? config.tags)],
    metadata: opts.metadata ?? {},
    weight: opts.weight ?? config.weight,
    concurrency,
    host: hostname(),
    pid: process.pid,
    startedAt: new Date().toISOString(),
  };
}

function agentIdentity(opts: AgentOptions): AgentIdentity {
  const { definition, config } = opts;
  const type = definition.type;
  const pool = opts.pool ?? config.pool;
  const id = `${poolLabel({ type: type.name, pool })}-${safeHost()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const record = agentRecord(id, type, pool, opts.concurrency ?? config.concurrency, opts);
  return { id, type, pool, record, log: opts.log.child({ agent: id, type: type.name, pool }) };
}

/** The health check (the definition's, else the default over the handlers' recent outcomes) and its monitor. */
function buildHealth(opts: AgentOptions) {
  const { definition, config } = opts;
  const outcomes = new OutcomeWindow();
  const check = definition.healthCheck ?? defaultCheck(outcomes);
  const stopCheck = 'stop' in check && typeof check.stop === 'function' ? () => (check as { stop(): void }).stop() : () => {};
  const monitor = new HealthMonitor(check, { ...config.health, ...definition.health });
  return { outcomes, monitor, stopCheck };
}

/** What the worker's processor is given besides the options. */
interface WorkerParts {
  identity: AgentIdentity;
  redis: RedisConnection;
  gate: PoolGate;
  slots: KeySlots;
  inFlight: InFlight;
  outcomes: OutcomeWindow;
  hooks: AgentHooks;
  events: EventLog;
  callbacks: CallbackOutbox;
  runs: RunStore;
  items: MapItemRunner;
}

/** The BullMQ Worker of the agent's pool queue (fetching and completing in batches), running each task through createProcessor; it does not run yet. */
function buildWorker(opts: AgentOptions, p: WorkerParts): BatchedWorker<TaskEnvelope> {
  const { definition, config } = opts;
  const { identity, redis, gate, outcomes, hooks } = p;
  const { runs, items } = p;
  // The processor tells the worker's local queue when a handler is about to run (the worker is built before any run).
  const worker: BatchedWorker<TaskEnvelope> = new BatchedWorker<TaskEnvelope>(
    queueName({ type: identity.type.name, pool: identity.pool }),
    createProcessor({
      definition,
      pool: identity.pool,
      log: identity.log,
      inFlight: p.inFlight,
      slots: p.slots,
      ...(gate.rated ? { rate: (taskId: string, key: string | undefined) => gate.takeRate(taskId, key) } : {}),
      holdPool: (ms) => gate.hold(ms),
      defer: (job, token, untilMs) => defer(job, token, untilMs, redis),
      admit: (jobId) => gate.admit(jobId),
      settled: (jobId, admission, outcome) => gate.settled(jobId, admission, outcome),
      namedBreaker: (name) => gate.named(name),
      callback: (url, taskId, state) => p.callbacks.add({ kind: 'task', id: taskId, state, url }),
      settleNode: nodeSettler(runs, items),
      started: () => hooks.started(),
      beforeHandler: (job) => worker.beforeHandler(job),
      finished: (ok) => {
        hooks.finished();
        outcomes.record(ok);
      },
    }),
    {
      connection: redis,
      prefix: config.prefix,
      name: identity.id,
      concurrency: identity.record.concurrency,
      lockDuration: config.lockMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: config.maxStalled,
      settings: { backoffStrategy: backoffStrategy(identity.type.defaults.backoff) },
      autorun: false,
    },
    { redis, prefetch: config.prefetch ?? identity.record.concurrency },
  );
  return worker;
}

/** How a task's end reaches its workflow: a map item through the map's runner (which starts the next item), a node or compensation through its run. */
export function nodeSettler(runs: RunStore, items: MapItemRunner): TaskSteps['settleNode'] {
  return async (w, outcome, payload, info, job) => {
    if (w.item !== undefined) await items.settled(job, w.run, w.node, w.item, outcome, payload);
    else await runs.settle(w.run, w.undo ? 'compensation' : 'node', w.node, outcome, payload, info, Date.now(), true);
  };
}

/** The agent's leased chore: expiring agents whose heartbeats stopped (API processes compete for the same lease). */
function buildHousekeeper(redis: RedisConnection, config: AgentConfig, identity: AgentIdentity, registry: Registry): Housekeeper {
  return new Housekeeper({
    redis,
    lockKey: keys(config.prefix).registry.housekeeper,
    owner: identity.id,
    intervalMs: config.heartbeatMs,
    leaseMs: 3 * config.heartbeatMs,
    chores: [{ name: 'expire agents', run: (now) => registry.expire(now).then(() => undefined) }],
    log: identity.log,
  });
}

/** Every part of an agent over its connections, none started; `hooks` are the lifecycle's (Agent). */
export function buildAgentParts(opts: AgentOptions, connections: AgentConnections, hooks: AgentHooks): AgentParts {
  const { config } = opts;
  const { redis, subscriber } = connections;
  const identity = agentIdentity(opts);
  const { type, pool, log } = identity;
  const registry = new Registry(redis, config.prefix);
  const metrics = new AgentMetrics(redis, config.prefix, identity.id, { type: type.name, pool });
  const gate = new PoolGate({
    redis, subscriber, prefix: config.prefix, ref: { type: type.name, pool }, policy: type.breaker, log,
    onChange: () => hooks.pullingMayChange(),
    limits: type.limits,
    onLimited: (kind) => metrics.limited(kind),
  });
  const { outcomes, monitor, stopCheck } = buildHealth(opts);
  const inFlight = new InFlight(TIMEOUT);
  const slots = new KeySlots({
    redis, prefix: config.prefix, type: type.name, limit: type.limits.concurrencyPerKey, leaseMs: config.lockMs, log,
    onHeld: () => metrics.limited('key-concurrency'),
  });
  const events = new EventLog(redis, config.prefix, config.eventsRetentionMs ?? DEFAULT_EVENTS_RETENTION_MS, (err) => log.debug({ err: err.message }, 'could not append to the event log'));
  const callbacks = new CallbackOutbox(redis, config.prefix);
  const runs = new RunStore(redis, config.prefix, events);
  const items = new MapItemRunner(runs, redis, config.prefix, queueName({ type: type.name, pool }));
  const worker = buildWorker(opts, { identity, redis, gate, slots, inFlight, outcomes, hooks, events, callbacks, runs, items });
  const timing = { heartbeatMs: config.heartbeatMs, ttlMs: config.agentTtlMs };
  const presence = new Presence(registry, identity.record, timing, () => hooks.report(), () => hooks.pullingMayChange(), log);
  const housekeeper = buildHousekeeper(redis, config, identity, registry);
  return { ...identity, config, connections, registry, gate, slots, monitor, stopCheck, inFlight, worker, metrics, presence, housekeeper, events, callbacks, items };
}
