/**
 * src/agent/: the agent runtime. One Agent = one BullMQ Worker pulling from one pool queue, a
 * record in the registry kept alive by heartbeats, and a health monitor that decides whether it
 * may pull: it starts UNKNOWN and pulls nothing until its first check passes, pauses while
 * UNHEALTHY, draining, or while its pool's breaker holds it (pool-gate.ts), and on close stops
 * pulling, deregisters at once, and lets in-flight tasks finish within the grace period (then puts
 * them back without spending an attempt).
 *
 * This file is the lifecycle: boot order, pulling and pausing, close. The parts it runs are built in
 * agent-parts.ts (buildAgentParts), which it hands its hooks.
 */
import { EventEmitter } from 'node:events';
import type { Job } from 'bullmq';
import { PROGRESS_EVENT_BYTES, taskEvent, type TaskEventState } from '../events/event-log.ts';
import { progressOf, type TaskProgress } from '../model/task-progress.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { failedEventState } from '../task/view.ts';
import { isServing, type Health } from '../model/health-state.ts';
import type { HealthTransition } from '../health/tracker.ts';
import { keys } from '../redis/keys.ts';
import type { AgentRecord } from '../model/agent-record.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { HeartbeatReport } from '../registry/registry.ts';
import { registerPoolQueue } from '../task/pool-queues.ts';
import { isCancelMessage } from '../task/cancel.ts';
import { SHUTDOWN } from './processor.ts';
import { taskLogFields } from '../model/task-id.ts';
import { buildAgentParts, connectAgent, type AgentHooks, type AgentOptions, type AgentParts } from './agent-parts.ts';

export type { AgentConfig, AgentOptions } from './agent-parts.ts';

/** How long the pull chain waits for BullMQ's pause() before going on (see #pause). */
const PAUSE_WAIT_MS = 1000;

export interface AgentEvents {
  /** A task finished successfully on this agent. */
  completed: [taskId: string];
  /** An attempt failed (it may still be retried). */
  failed: [taskId: string, error: Error];
  health: [HealthTransition];
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly id: string;
  readonly type: AgentType;
  readonly pool: string;
  readonly record: AgentRecord;
  /** The parts this lifecycle runs (agent-parts.ts). */
  readonly #p: AgentParts;
  #running = 0;
  #pulling = false;
  #pullChain: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  /** Builds the parts with this agent's hooks, then listens to its monitor and worker. */
  private constructor(build: (hooks: AgentHooks) => AgentParts) {
    super();
    this.#p = build({
      pullingMayChange: () => this.#updatePulling(),
      report: () => this.#report(),
      started: () => void this.#running++,
      finished: () => void this.#running--,
    });
    this.id = this.#p.id;
    this.type = this.#p.type;
    this.pool = this.#p.pool;
    this.record = this.#p.record;
    this.#p.monitor.on('change', (t) => this.#onHealth(t));
    this.#watchWorker();
  }

  /** Metrics, events and logs of what the worker reports. */
  #watchWorker(): void {
    const { worker, metrics, log, events } = this.#p;
    const ref = { type: this.type.name, pool: this.pool };
    const tell = (job: Job<TaskEnvelope>, state: TaskEventState, more: { attempt?: number; error?: string; progress?: TaskProgress } = {}) => events.append(taskEvent(job, ref, state, more));
    worker.on('error', (err) => log.error({ err }, 'worker error'));
    worker.on('active', (job) => tell(job, 'active', { attempt: job.attemptsMade + 1 }));
    worker.on('progress', (job, value) => {
      const progress = progressOf(value);
      tell(job, 'progress', progress !== undefined && Buffer.byteLength(JSON.stringify(progress)) <= PROGRESS_EVENT_BYTES ? { progress } : {});
    });
    worker.on('completed', (job) => {
      metrics.completed(job);
      tell(job, 'completed');
      this.emit('completed', job.id ?? '');
    });
    worker.on('failed', (job, err) => {
      if (job) metrics.failed(job);
      if (job) tell(job, failedEventState(job), { attempt: job.attemptsMade, error: err.message });
      if (job) log.warn({ ...taskLogFields(job.id), attempt: job.attemptsMade, err: err.message }, 'task attempt failed');
      this.emit('failed', job?.id ?? '', err);
    });
    worker.on('stalled', (id) => log.warn(taskLogFields(id), 'task stalled: its agent stopped renewing the lock; re-queued'));
  }

  /** Registers, waits for the first passing health check (ensureReady), then starts pulling. */
  static async start(opts: AgentOptions): Promise<Agent> {
    const connections = connectAgent(opts.redisUrl);
    const agent = new Agent((hooks) => buildAgentParts(opts, connections, hooks));
    try {
      await agent.#boot();
    } catch (err) {
      await agent.close(0);
      throw err;
    }
    return agent;
  }

  async #boot(): Promise<void> {
    const { config, connections, registry, gate, slots, presence, housekeeper, metrics, monitor, worker, log } = this.#p;
    await registerPoolQueue(connections.redis, config.prefix, { type: this.type.name, pool: this.pool });
    await registry.register(this.record, { heartbeatMs: config.heartbeatMs, ttlMs: config.agentTtlMs });
    await gate.start();
    slots.start();
    await this.#listenForCancels();
    presence.start();
    housekeeper.start();
    metrics.start(config.heartbeatMs);
    log.info('agent registered; waiting for its first health check to pass');
    await monitor.ensureReady(config.readyTimeoutMs);
    monitor.start();
    await presence.beat();
    this.#pulling = true;
    void worker.run().catch((err: unknown) => log.error({ err }, 'worker stopped'));
    await worker.waitUntilReady();
    log.info({ concurrency: this.record.concurrency, weight: this.record.weight, health: this.health }, 'agent started');
  }

  /** Aborts a task this agent runs when a cancellation for it is published. */
  async #listenForCancels(): Promise<void> {
    const { config, connections, inFlight, worker, log } = this.#p;
    const taskEvents = keys(config.prefix).taskEvents;
    connections.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== taskEvents) return;
      try {
        const m: unknown = JSON.parse(message);
        if (!isCancelMessage(m)) return;
        // Only the agent running the task, or holding it fetched and not started, acts on it.
        if (inFlight.abort(m.taskId, m.reason)) log.info(taskLogFields(m.taskId), 'task cancelled on request');
        else if (worker.holds(m.taskId)) {
          inFlight.abortBeforeStart(m.taskId, m.reason);
          log.info(taskLogFields(m.taskId), 'task cancelled on request before it started');
        }
      } catch {
        /* not ours */
      }
    });
    await connections.subscriber.subscribe(taskEvents);
  }

  get health(): Health {
    return this.#p.monitor.snapshot().health;
  }

  /** True while the agent takes new tasks. */
  get pulling(): boolean {
    return this.#pulling && !this.#p.worker.isPaused();
  }

  get draining(): boolean {
    return this.#p.presence.draining;
  }

  #report(): HeartbeatReport {
    const s = this.#p.monitor.snapshot();
    const reason = s.health === 'UNHEALTHY' || s.health === 'DEGRADED' ? s.lastError : undefined;
    return { health: s.health, healthReason: reason, running: this.#running, responseTimeMs: s.responseTimeMs };
  }

  #onHealth(t: HealthTransition): void {
    const level = t.to === 'UNHEALTHY' ? 'warn' : 'info';
    this.#p.log[level]({ from: t.from, to: t.to, reason: t.reason }, `health ${t.from} -> ${t.to}`);
    const event = { kind: 'health' as const, agentId: this.id, type: this.type.name, pool: this.pool, at: new Date().toISOString(), ...t };
    // Publish once the registry holds the new health, so routers refreshing on the event read it.
    void this.#p.presence.beat().then(() => this.#p.registry.publish(event)).catch(() => undefined);
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
    const { worker, presence, gate, log } = this.#p;
    this.#pullChain = this.#pullChain
      .then(async () => {
        const want = !this.#closing && !presence.draining && isServing(this.health) && !gate.holds();
        const paused = worker.isPaused();
        if (want && paused) {
          log.info('resuming: pulling tasks again');
          await worker.resume();
        } else if (!want && !paused) {
          log.warn({ health: this.health, draining: presence.draining }, 'pausing: in-flight tasks finish, no new ones');
          await this.#pause();
        }
      })
      .catch((err: unknown) => log.error({ err }, 'could not pause or resume the worker'));
  }

  /**
   * BullMQ's pause(): the worker stops fetching at once, and the call resolves once in-flight tasks
   * are done. On a Redis Cluster it can stay pending for good (bullmq #4065: the blocking
   * connection's 'end' never comes), which would hold every later resume: the chain waits for it at
   * most PAUSE_WAIT_MS. If it settles after a resume, it has stopped the stalled-job checker the
   * resume had restarted: pause(true) + resume() restarts it without waiting for anything.
   */
  async #pause(): Promise<void> {
    const { worker, log } = this.#p;
    const pausing = worker.pause();
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([pausing.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), PAUSE_WAIT_MS)))]);
    clearTimeout(timer);
    if (settled) return;
    log.debug({ waitedMs: PAUSE_WAIT_MS }, 'pause still settling (in-flight tasks, or bullmq #4065); not pulling meanwhile');
    void pausing.then(async () => {
      if (worker.isPaused() || this.#closing) return;
      await worker.pause(true);
      await worker.resume();
    });
  }

  /** Stops pulling and deregisters at once; in-flight tasks get the grace period, then go back to waiting. */
  close(graceMs = this.#p.config.shutdownGraceMs): Promise<void> {
    const { monitor, stopCheck, presence, housekeeper, metrics, inFlight, worker, gate, slots, callbacks, connections, log } = this.#p;
    this.#closing ??= (async () => {
      log.info({ graceMs }, 'agent stopping: no new tasks, waiting for in-flight ones');
      monitor.stop();
      stopCheck();
      await Promise.all([presence.stop(), housekeeper.stop(), metrics.stop()]);
      const timer = setTimeout(() => inFlight.abortAll(SHUTDOWN), graceMs);
      try {
        await worker.close();
      } finally {
        clearTimeout(timer);
        await Promise.all([gate.stop(), slots.stop(), callbacks.close().catch(() => undefined), this.#p.items.close().catch(() => undefined), this.#p.events.flush()]);
        const { subscriber, redis } = connections;
        await subscriber.quit().catch(() => subscriber.disconnect());
        await redis.quit().catch(() => redis.disconnect());
      }
      log.info('agent stopped');
    })();
    return this.#closing;
  }
}
