/**
 * src/agent/: the agent runtime. One Agent = one BullMQ Worker pulling from one pool queue, a
 * record in the registry kept alive by heartbeats, and a health monitor that decides whether it
 * may pull: it starts UNKNOWN and pulls nothing until its first check passes, pauses while
 * UNHEALTHY, draining, or while its pool's breaker holds it (pool-gate.ts), and on close stops
 * pulling, deregisters at once, and lets in-flight tasks finish within the grace period (then puts
 * them back without spending an attempt).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { Config } from '../config/env.ts';
import { defaultCheck, OutcomeWindow } from '../health/check.ts';
import { HealthMonitor } from '../health/monitor.ts';
import { isServing, type Health } from '../model/health-state.ts';
import type { HealthTransition } from '../health/tracker.ts';
import { Housekeeper } from '../housekeeping/housekeeper.ts';
import type { Logger } from '../config/logger.ts';
import { createRedis } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { poolLabel, queueName } from '../model/names.ts';
import type { AgentRecord } from '../model/agent-record.ts';
import { Registry, type HeartbeatReport } from '../registry/registry.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { registerPoolQueue } from '../task/pool-queues.ts';
import { isCancelMessage } from '../task/cancel.ts';
import { Presence } from './presence.ts';
import { backoffStrategy } from '../task/backoff-strategy.ts';
import { createProcessor, SHUTDOWN, TIMEOUT } from './processor.ts';
import { InFlight } from './in-flight.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import { PoolGate } from './pool-gate.ts';
import type { WorkerDefinition } from './worker-definition.ts';
import { RunStore } from '../workflow/run-store.ts';
import { taskLogFields } from '../model/task-id.ts';

export type AgentConfig = Pick<
  Config,
  | 'prefix' | 'lockMs' | 'stalledIntervalMs' | 'maxStalled' | 'shutdownGraceMs' | 'heartbeatMs' | 'agentTtlMs'
  | 'health' | 'readyTimeoutMs' | 'concurrency' | 'pool' | 'weight' | 'tags'
>;

/** How long the pull chain waits for BullMQ's pause() before going on (see #pause). */
const PAUSE_WAIT_MS = 1000;

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

export interface AgentEvents {
  /** A task finished successfully on this agent. */
  completed: [taskId: string];
  /** An attempt failed (it may still be retried). */
  failed: [taskId: string, error: Error];
  health: [HealthTransition];
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

export class Agent extends EventEmitter<AgentEvents> {
  readonly id: string;
  readonly type: AgentType;
  readonly pool: string;
  readonly record: AgentRecord;
  readonly #redis: RedisConnection;
  readonly #registry: Registry;
  readonly #worker: Worker<TaskEnvelope>;
  readonly #monitor: HealthMonitor;
  readonly #presence: Presence;
  readonly #metrics: AgentMetrics;
  readonly #housekeeper: Housekeeper;
  readonly #stopCheck: () => void;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #inFlight = new InFlight(TIMEOUT);
  readonly #gate: PoolGate;
  readonly #subscriber: RedisConnection;
  #running = 0;
  #pulling = false;
  #pullChain: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  private constructor(opts: AgentOptions, redis: RedisConnection, subscriber: RedisConnection) {
    super();
    const { definition, config } = opts;
    this.type = definition.type;
    this.pool = opts.pool ?? config.pool;
    const concurrency = opts.concurrency ?? config.concurrency;
    this.id = `${poolLabel({ type: this.type.name, pool: this.pool })}-${safeHost()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.record = agentRecord(this.id, this.type, this.pool, concurrency, opts);
    this.#redis = redis;
    this.#registry = new Registry(redis, config.prefix);
    this.#graceMs = config.shutdownGraceMs;
    this.#log = opts.log.child({ agent: this.id, type: this.type.name, pool: this.pool });

    this.#subscriber = subscriber;
    this.#gate = new PoolGate({
      redis, subscriber, prefix: config.prefix, ref: { type: this.type.name, pool: this.pool }, policy: this.type.breaker, log: this.#log,
      onChange: () => this.#updatePulling(),
    });

    const outcomes = new OutcomeWindow();
    const check = definition.healthCheck ?? defaultCheck(outcomes);
    this.#stopCheck = 'stop' in check && typeof check.stop === 'function' ? () => (check as { stop(): void }).stop() : () => {};
    this.#monitor = new HealthMonitor(check, { ...config.health, ...definition.health });
    this.#monitor.on('change', (t) => this.#onHealth(t));

    this.#worker = this.#createWorker(opts, redis, concurrency, outcomes);
    this.#metrics = new AgentMetrics(redis, config.prefix, this.id, { type: this.type.name, pool: this.pool });
    this.#watchWorker();

    const timing = { heartbeatMs: config.heartbeatMs, ttlMs: config.agentTtlMs };
    this.#presence = new Presence(this.#registry, this.record, timing, () => this.#report(), () => this.#updatePulling(), this.#log);
    this.#housekeeper = new Housekeeper({
      redis,
      lockKey: keys(config.prefix).registry.housekeeper,
      owner: this.id,
      intervalMs: config.heartbeatMs,
      leaseMs: 3 * config.heartbeatMs,
      chores: [{ name: 'expire agents', run: (now) => this.#registry.expire(now).then(() => undefined) }],
      log: this.#log,
    });
  }

  /** The BullMQ Worker of this agent's pool queue, running each task through createProcessor. */
  #createWorker(opts: AgentOptions, redis: RedisConnection, concurrency: number, outcomes: OutcomeWindow): Worker<TaskEnvelope> {
    const { definition, config } = opts;
    const runs = new RunStore(redis, config.prefix);
    return new Worker<TaskEnvelope>(
      queueName({ type: this.type.name, pool: this.pool }),
      createProcessor({
        definition,
        pool: this.pool,
        log: this.#log,
        inFlight: this.#inFlight,
        admit: (jobId) => this.#gate.admit(jobId),
        settled: (jobId, admission, outcome) => this.#gate.settled(jobId, admission, outcome),
        namedBreaker: (name) => this.#gate.named(name),
        settleNode: async (w, outcome, payload, info) => {
          await runs.settle(w.run, w.undo ? 'compensation' : 'node', w.node, outcome, payload, info);
        },
        started: () => void this.#running++,
        finished: (ok) => {
          this.#running--;
          outcomes.record(ok);
        },
      }),
      {
        connection: redis,
        prefix: config.prefix,
        name: this.id,
        concurrency,
        lockDuration: config.lockMs,
        stalledInterval: config.stalledIntervalMs,
        maxStalledCount: config.maxStalled,
        settings: { backoffStrategy: backoffStrategy(this.type.defaults.backoff) },
        autorun: false,
      },
    );
  }

  /** Metrics, events and logs of what the worker reports. */
  #watchWorker(): void {
    this.#worker.on('error', (err) => this.#log.error({ err }, 'worker error'));
    this.#worker.on('completed', (job) => {
      this.#metrics.completed(job);
      this.emit('completed', job.id ?? '');
    });
    this.#worker.on('failed', (job, err) => {
      if (job) this.#metrics.failed(job);
      if (job) this.#log.warn({ ...taskLogFields(job.id), attempt: job.attemptsMade, err: err.message }, 'task attempt failed');
      this.emit('failed', job?.id ?? '', err);
    });
    this.#worker.on('stalled', (id) => this.#log.warn(taskLogFields(id), 'task stalled: its agent stopped renewing the lock; re-queued'));
  }

  /** Registers, waits for the first passing health check (ensureReady), then starts pulling. */
  static async start(opts: AgentOptions): Promise<Agent> {
    const redis = createRedis(opts.redisUrl, 'blocking', 'switchyard-agent');
    const subscriber = createRedis(opts.redisUrl, 'blocking', 'switchyard-agent-events');
    const agent = new Agent(opts, redis, subscriber);
    try {
      await agent.#boot(opts);
    } catch (err) {
      await agent.close(0);
      throw err;
    }
    return agent;
  }

  async #boot(opts: AgentOptions): Promise<void> {
    const { config } = opts;
    await registerPoolQueue(this.#redis, config.prefix, { type: this.type.name, pool: this.pool });
    await this.#registry.register(this.record, { heartbeatMs: config.heartbeatMs, ttlMs: config.agentTtlMs });
    await this.#gate.start();
    const taskEvents = keys(config.prefix).taskEvents;
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== taskEvents) return;
      try {
        const m: unknown = JSON.parse(message);
        // Only the agent running the task has it tracked; cancelJob is a no-op everywhere else.
        if (isCancelMessage(m) && this.#inFlight.abort(m.taskId, m.reason)) this.#log.info(taskLogFields(m.taskId), 'task cancelled on request');
      } catch {
        /* not ours */
      }
    });
    await this.#subscriber.subscribe(taskEvents);
    this.#presence.start();
    this.#housekeeper.start();
    this.#metrics.start(config.heartbeatMs);
    this.#log.info('agent registered; waiting for its first health check to pass');
    await this.#monitor.ensureReady(config.readyTimeoutMs);
    this.#monitor.start();
    await this.#presence.beat();
    this.#pulling = true;
    void this.#worker.run().catch((err: unknown) => this.#log.error({ err }, 'worker stopped'));
    await this.#worker.waitUntilReady();
    this.#log.info({ concurrency: this.record.concurrency, weight: this.record.weight, health: this.health }, 'agent started');
  }

  get health(): Health {
    return this.#monitor.snapshot().health;
  }

  /** True while the agent takes new tasks. */
  get pulling(): boolean {
    return this.#pulling && !this.#worker.isPaused();
  }

  get draining(): boolean {
    return this.#presence.draining;
  }

  #report(): HeartbeatReport {
    const s = this.#monitor.snapshot();
    const reason = s.health === 'UNHEALTHY' || s.health === 'DEGRADED' ? s.lastError : undefined;
    return { health: s.health, healthReason: reason, running: this.#running, responseTimeMs: s.responseTimeMs };
  }

  #onHealth(t: HealthTransition): void {
    const level = t.to === 'UNHEALTHY' ? 'warn' : 'info';
    this.#log[level]({ from: t.from, to: t.to, reason: t.reason }, `health ${t.from} -> ${t.to}`);
    const event = { kind: 'health' as const, agentId: this.id, type: this.type.name, pool: this.pool, at: new Date().toISOString(), ...t };
    // Publish once the registry holds the new health, so routers refreshing on the event read it.
    void this.#presence.beat().then(() => this.#registry.publish(event)).catch(() => undefined);
    this.#updatePulling();
    this.emit('health', t);
  }

  /**
   * Pull only while serving (HEALTHY or DEGRADED), not draining and not closing; in-flight tasks
   * always finish. Pause and resume are chained: BullMQ's pause() resolves once in-flight tasks are
   * done, and a resume() racing it could be undone by it. pause(true) is not used: it leaves a
   * blocking fetch in flight that still takes a job.
   */
  #updatePulling(): void {
    if (!this.#pulling) return;
    this.#pullChain = this.#pullChain
      .then(async () => {
        const want = !this.#closing && !this.#presence.draining && isServing(this.health) && !this.#gate.holds();
        const paused = this.#worker.isPaused();
        if (want && paused) {
          this.#log.info('resuming: pulling tasks again');
          await this.#worker.resume();
        } else if (!want && !paused) {
          this.#log.warn({ health: this.health, draining: this.#presence.draining }, 'pausing: in-flight tasks finish, no new ones');
          await this.#pause();
        }
      })
      .catch((err: unknown) => this.#log.error({ err }, 'could not pause or resume the worker'));
  }

  /**
   * BullMQ's pause(): the worker stops fetching at once, and the call resolves once in-flight tasks
   * are done. On a Redis Cluster it can stay pending for good (bullmq #4065: the blocking
   * connection's 'end' never comes), which would hold every later resume: the chain waits for it at
   * most PAUSE_WAIT_MS. If it settles after a resume, it has stopped the stalled-job checker the
   * resume had restarted: pause(true) + resume() restarts it without waiting for anything.
   */
  async #pause(): Promise<void> {
    const pausing = this.#worker.pause();
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([pausing.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), PAUSE_WAIT_MS)))]);
    clearTimeout(timer);
    if (settled) return;
    this.#log.debug({ waitedMs: PAUSE_WAIT_MS }, 'pause still settling (in-flight tasks, or bullmq #4065); not pulling meanwhile');
    void pausing.then(async () => {
      if (this.#worker.isPaused() || this.#closing) return;
      await this.#worker.pause(true);
      await this.#worker.resume();
    });
  }

  /** Stops pulling and deregisters at once; in-flight tasks get the grace period, then go back to waiting. */
  close(graceMs = this.#graceMs): Promise<void> {
    this.#closing ??= (async () => {
      this.#log.info({ graceMs }, 'agent stopping: no new tasks, waiting for in-flight ones');
      this.#monitor.stop();
      this.#stopCheck();
      await Promise.all([this.#presence.stop(), this.#housekeeper.stop(), this.#metrics.stop()]);
      const timer = setTimeout(() => this.#inFlight.abortAll(SHUTDOWN), graceMs);
      try {
        await this.#worker.close();
      } finally {
        clearTimeout(timer);
        await this.#gate.stop();
        await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
        await this.#redis.quit().catch(() => this.#redis.disconnect());
      }
      this.#log.info('agent stopped');
    })();
    return this.#closing;
  }
}
