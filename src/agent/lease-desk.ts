/**
 * The API's side of the worker protocol over HTTP (src/model/worker-protocol.ts): agents in any
 * language register in the same registry as Node agents (so routing, weights and health treat them
 * alike), lease tasks of their pool, extend their leases and report how each ended.
 *
 * Stateless across API processes: a lease is the task's BullMQ lock token, so any API process can
 * extend it or commit its end, and BullMQ's own lock check refuses a stale one (409, nothing written).
 * An expired lease is re-queued by BullMQ's stalled check, which the desk's worker of each pool runs.
 * The steps around the handler are the Node agent's own (processor.ts): the envelope, poison and
 * payload checks, concurrency keys, the type's rates, the pool breaker's admission, then the result
 * schema, the workflow settle and the callback, and the retry policy. Before a reported end settles
 * anything (a node, a callback), its lease is extended: the token check and the settle hold together.
 * A cancel reaches the worker on its next heartbeat or extend (kept in Redis by TaskCanceller).
 */
import { randomBytes } from 'node:crypto';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { contextOf, pastSpan, tracingOn } from '../config/tracing.ts';
import type { CallbackOutbox } from '../callbacks/callback-outbox.ts';
import type { EventLog, TaskEventState } from '../events/event-log.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { AgentRecord } from '../model/agent-record.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { Catalogue } from '../model/catalogue.ts';
import { RetryAfterError, SwitchyardError, TimeoutError } from '../model/errors.ts';
import { isServing } from '../model/health-state.ts';
import { queueName, type PoolRef } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { CommitState, LeaseRef, LeaseState, TaskOutcome, WorkerHeartbeat, WorkerRegistration } from '../model/worker-protocol.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import type { Registry, RegistryTiming } from '../registry/registry.ts';
import { backoffStrategy } from '../task/backoff-strategy.ts';
import { defer } from '../task/deferral.ts';
import { KeySlots } from '../task/key-slots.ts';
import { registerPoolQueue } from '../task/pool-queues.ts';
import { CANCELLED_PREFIX } from '../task/view.ts';
import type { RunStore } from '../workflow/run-store.ts';
import { nodeSettler } from './agent-parts.ts';
import { MapItemRunner } from './map-items.ts';
import { PoolGate } from './pool-gate.ts';
import { checkedTask, commitResult, isFinalFailure, settleDead, type PoolOutcome, type TaskSteps } from './processor.ts';

export type DeskConfig = Pick<Config, 'prefix' | 'lockMs' | 'stalledIntervalMs' | 'maxStalled' | 'heartbeatMs' | 'agentTtlMs'>;

export interface LeaseDeskOptions {
  /** Commands and the pools' BullMQ workers (a connection that waits out outages: maxRetriesPerRequest null). */
  redis: RedisConnection;
  /** For the pool gates' breaker and hold messages. */
  subscriber: RedisConnection;
  config: DeskConfig;
  catalogue: Catalogue;
  registry: Registry;
  events: EventLog;
  callbacks: CallbackOutbox;
  runs: RunStore;
  log: Logger;
}

/** A task handed to a worker. */
export interface Lease {
  task: string;
  lease: string;
  type: string;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
  idempotencyKey: string;
  /** The run's hard limit: past `deadline` (ms since the epoch) the attempt has timed out. */
  timeoutMs: number;
  deadline: number;
  /** Extend the lease before this long has passed (each extend renews it for as long). */
  leaseMs: number;
  deps?: Record<string, unknown>;
  workflow?: { runId: string; nodeId: string; compensating: boolean; item?: number };
  /** W3C trace context of the span that enqueued the task, so the worker's spans join its trace. */
  traceparent?: string;
  tracestate?: string;
}

export interface RegisteredWorker {
  id: string;
  type: string;
  pool: string;
  concurrency: number;
  weight: number;
  /** Heartbeat this often; a worker silent for ttlMs is removed from the registry. */
  heartbeatMs: number;
  ttlMs: number;
  leaseMs: number;
}

/** What a lease request gets: the tasks, or why it gets none now. */
export interface LeaseGrant {
  leases: Lease[];
  paused?: string;
}

/** A pool's parts in this API process, made when a worker of the pool first speaks. */
interface Counter {
  ref: PoolRef;
  type: AgentType;
  worker: Worker<TaskEnvelope>;
  gate: PoolGate;
  slots: KeySlots;
  metrics: AgentMetrics;
  items: MapItemRunner;
  steps: TaskSteps;
  /** Jobs leased by this process, by lease token: a result that comes back here needs no read. */
  jobs: Map<string, Job<TaskEnvelope>>;
}

/** Jobs remembered per pool, at most (the oldest are forgotten first: they are read again when needed). */
const JOBS_KEPT = 20_000;
/** A long poll looks again after 5 ms, then 10, 20, ... at most this long (sooner when this process enqueues to the pool). */
const MAX_POLL_MS = 100;

/** `<type>.<pool>.http-<hex>`: the worker's pool is in its id, so extends and results read no registry. */
const WORKER_ID = /^([a-z][a-z0-9-]{0,62})\.([a-z0-9][a-z0-9-]{0,62})\.http-[0-9a-f]{12}$/;

export function poolOfWorker(id: string): PoolRef {
  const m = WORKER_ID.exec(id);
  if (!m) throw new SwitchyardError('WORKER_NOT_FOUND', `${JSON.stringify(id)} is not a worker id; POST /v1/workers registers one`);
  return { type: m[1]!, pool: m[2]! };
}

export class LeaseDesk {
  readonly #o: LeaseDeskOptions;
  readonly #timing: RegistryTiming;
  readonly #counters = new Map<string, Promise<Counter>>();
  /** Long polls waiting for tasks, by queue name. */
  readonly #waiting = new Map<string, Set<() => void>>();
  readonly #instance = randomBytes(4).toString('hex');
  #seq = 0;
  #closed = false;

  constructor(o: LeaseDeskOptions) {
    this.#o = o;
    this.#timing = { heartbeatMs: o.config.heartbeatMs, ttlMs: o.config.agentTtlMs };
  }

  /** Registers a worker as UNKNOWN: it gets no task until a heartbeat says it is HEALTHY or DEGRADED. */
  async register(r: WorkerRegistration): Promise<RegisteredWorker> {
    const type = this.#o.catalogue.get(r.type);
    const ref = { type: type.name, pool: r.pool };
    const id = `${type.name}.${r.pool}.http-${randomBytes(6).toString('hex')}`;
    const version = r.version ?? type.version;
    const record: AgentRecord = {
      id, type: type.name, pool: r.pool, version, capabilities: [{ name: type.name, version }], tags: r.tags,
      metadata: { ...r.metadata, protocol: 'http' }, weight: r.weight, concurrency: r.concurrency,
      host: r.host ?? 'unknown', pid: 0, startedAt: new Date().toISOString(),
    };
    await registerPoolQueue(this.#o.redis, this.#o.config.prefix, ref);
    await this.#o.registry.register(record, this.#timing);
    await this.#counter(ref);
    return { id, type: type.name, pool: r.pool, concurrency: r.concurrency, weight: r.weight, ...this.#timing, leaseMs: this.#o.config.lockMs };
  }

  async deregister(id: string): Promise<void> {
    poolOfWorker(id);
    if (!(await this.#o.registry.deregister(id))) throw notRegistered(id);
  }

  /** Records the worker's health and load; extends the leases it names (answering the cancelled ones). */
  async heartbeat(id: string, beat: WorkerHeartbeat): Promise<{ draining: boolean; leases: Array<LeaseRef & { state: LeaseState }> }> {
    const ref = poolOfWorker(id);
    const before = await this.#o.registry.get(id);
    if (!before) throw notRegistered(id);
    const report = { health: beat.health, healthReason: beat.reason, running: beat.running, responseTimeMs: beat.responseTimeMs };
    const result = await this.#o.registry.heartbeat(id, report, this.#timing);
    if (result === 'gone') throw notRegistered(id);
    if (before.health !== beat.health) {
      // Routers refresh on the event, as they do for a Node agent's health change.
      const reason = beat.reason ?? `the worker reported ${beat.health}`;
      await this.#o.registry.publish({ kind: 'health', agentId: id, ...ref, at: new Date().toISOString(), from: before.health, to: beat.health, reason });
    }
    const leases = beat.leases.length > 0 ? await this.extend(id, beat.leases) : [];
    return { draining: result === 'draining', leases };
  }

  /** Up to `max` tasks of the worker's pool (at most its concurrency), waiting up to `waitMs` for the first. */
  async lease(id: string, req: { max: number; waitMs: number }, signal?: AbortSignal): Promise<LeaseGrant> {
    const ref = poolOfWorker(id);
    const view = await this.#o.registry.get(id);
    if (!view) throw notRegistered(id);
    if (view.draining) return { leases: [], paused: 'draining: finish the leases held, take no new ones' };
    if (!isServing(view.health)) return { leases: [], paused: `health is ${view.health}: a heartbeat saying HEALTHY or DEGRADED lets it lease` };
    const c = await this.#counter(ref);
    const max = Math.min(req.max, view.concurrency);
    const deadline = Date.now() + req.waitMs;
    for (let pollMs = 5; ; pollMs = Math.min(2 * pollMs, MAX_POLL_MS)) {
      if (c.gate.holds()) return { leases: [], paused: `pool ${ref.type}.${ref.pool} is held: its breaker is open, or a RetryAfter holds it` };
      const leases = await this.#take(c, id, max);
      const left = deadline - Date.now();
      if (leases.length > 0 || left <= 0 || signal?.aborted || this.#closed) return { leases };
      await this.#nap(queueName(ref), Math.min(pollMs, left), signal);
    }
  }

  /** Wakes the long polls of a queue (this process just added tasks to it). */
  wake(queue: string): void {
    for (const w of this.#waiting.get(queue) ?? []) w();
  }

  /**
   * Extends leases: `extended`, `lost` (expired or taken back: stop, the task runs elsewhere),
   * `cancelled` (its task was cancelled: stop; the attempt ended as cancelled) or `timeout` (past its
   * deadline: the attempt failed as timed out).
   */
  async extend(id: string, refs: readonly LeaseRef[]): Promise<Array<LeaseRef & { state: LeaseState }>> {
    const c = await this.#known(poolOfWorker(id));
    if (!c) return refs.map((r) => ({ ...r, state: 'lost' as const }));
    const k = keys(this.#o.config.prefix);
    const queue = queueName(c.ref);
    // The tokens first (each held lease extended at once), so a cancel or a timeout below acts only under a held lease.
    const [lost, asked] = await Promise.all([
      c.worker.backend.extendLocks(refs.map((r) => r.task), refs.map((r) => r.lease), this.#o.config.lockMs).then((ids) => new Set(ids)),
      this.#o.redis.mget(...refs.map((r) => k.cancelAsked(queue, r.task))),
    ]);
    const states = await Promise.all(refs.map(async (r, i): Promise<LeaseState> => {
      const job = lost.has(r.task) ? undefined : await this.#job(c, r);
      if (!job) return 'lost';
      const reason = asked[i];
      if (reason != null) {
        const ended = await this.#fail(c, job, r.lease, new UnrecoverableError(`${CANCELLED_PREFIX}${reason}`), 'neutral');
        if (ended !== 'conflict') await this.#o.redis.del(k.cancelAsked(queue, r.task));
        return ended === 'conflict' ? 'lost' : 'cancelled';
      }
      if (Date.now() > deadlineOf(c, job)) return (await this.#fail(c, job, r.lease, new TimeoutError(timeoutOf(c, job)), 'failure')) === 'conflict' ? 'lost' : 'timeout';
      const key = job.data?.concurrency?.key;
      if (key !== undefined) await c.slots.renew([{ id: r.task, key }]);
      return 'extended';
    }));
    refs.forEach((r, i) => states[i] !== 'extended' && c.jobs.delete(r.lease));
    return refs.map((r, i) => ({ task: r.task, lease: r.lease, state: states[i]! }));
  }

  /** Commits how leased tasks ended, each once and only while its lease holds (`conflict` otherwise: nothing written). */
  async report(id: string, outcomes: readonly TaskOutcome[]): Promise<Array<{ task: string; state: CommitState; error?: string }>> {
    const c = await this.#known(poolOfWorker(id));
    if (!c) return outcomes.map((o) => ({ task: o.task, state: 'conflict' as const, error: LOST }));
    const jobs = await Promise.all(outcomes.map((o) => this.#job(c, o)));
    // A task whose end tells others (its workflow node, its callback) has its lease checked first, and extended,
    // so those run under it; any other's end is one move, which checks the lease itself.
    const guarded = outcomes.filter((_, i) => jobs[i]?.data?.workflow || jobs[i]?.data?.callback);
    const lost = new Set(guarded.length > 0 ? await c.worker.backend.extendLocks(guarded.map((o) => o.task), guarded.map((o) => o.lease), this.#o.config.lockMs) : []);
    return Promise.all(outcomes.map(async (o, i) => {
      const job = lost.has(o.task) ? undefined : jobs[i];
      c.jobs.delete(o.lease);
      if (!job) return { task: o.task, state: 'conflict' as const, error: LOST };
      const state = o.status === 'completed' ? await this.#complete(c, job, o.lease, o.result) : await this.#fail(c, job, o.lease, verdictOf(o), o.retry === 'fatal' ? 'neutral' : 'failure', o.retryAfterMs);
      return { task: o.task, state, ...(state === 'dead' || state === 'retrying' ? { error: job.failedReason } : {}) };
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const waiters of this.#waiting.values()) for (const w of waiters) w();
    const counters = await Promise.all([...this.#counters.values()].map((p) => p.catch(() => undefined)));
    await Promise.all(counters.map(async (c) => {
      if (!c) return;
      await c.worker.close();
      await Promise.all([c.gate.stop(), c.slots.stop(), c.metrics.stop(), c.items.close().catch(() => undefined)]);
    }));
  }

  /** Fetches up to `max` jobs (1, then 2, 4, ... at once while there are more) and admits each; leases of the admitted. */
  async #take(c: Counter, workerId: string, max: number): Promise<Lease[]> {
    const out: Lease[] = [];
    for (let batch = 1; out.length < max; batch = Math.min(2 * batch, max - out.length)) {
      const jobs = await Promise.all(Array.from({ length: Math.min(batch, max - out.length) }, async () => {
        const token = `${workerId}:${this.#instance}.${(++this.#seq).toString(36)}`;
        const job = (await c.worker.getNextJob(token, { block: false })) as Job<TaskEnvelope> | undefined;
        return job ? { job, token } : undefined;
      }));
      const admitted = await Promise.all(jobs.map((j) => (j ? this.#admit(c, j.job, j.token) : 'empty' as const)));
      for (const a of admitted) if (typeof a === 'object') out.push(a);
      if (admitted.some((a) => a === 'empty' || a === 'stop')) break;
    }
    return out;
  }

  /**
   * What the Node agent's processor does before the handler: checks (a bad task fails for good), the
   * key's slot, the rates and the breaker (a task refused by one goes back unspent). Answers its lease,
   * or why not: `skip` it failed its checks (dead), `stop` a limit says fetch no more now.
   */
  async #admit(c: Counter, job: Job<TaskEnvelope>, token: string): Promise<Lease | 'skip' | 'stop'> {
    const id = job.id ?? '';
    let env: TaskEnvelope;
    let payload: unknown;
    try {
      ({ env, payload } = await checkedTask(c.steps, job));
    } catch (err) {
      await this.#moveFailed(c, job, token, err as Error).catch(() => undefined);
      return 'skip';
    }
    const key = env.concurrency?.key;
    try {
      if (env.concurrency && !(await c.slots.take(job, token, false))) return 'stop';
    } catch (err) {
      if (err instanceof DelayedError) return 'stop'; // held: it left for the delayed set, attempt unspent
      throw err;
    }
    const giveBack = async (how: () => Promise<unknown>) => {
      if (key !== undefined) c.slots.release(job, key);
      await how().catch(() => undefined);
      return 'stop' as const;
    };
    if (c.gate.rated) {
      try {
        const keyWaitMs = await c.gate.takeRate(id, key);
        if (keyWaitMs > 0) return giveBack(() => defer(job, token, Date.now() + keyWaitMs, this.#o.redis));
      } catch {
        return giveBack(() => job.moveToWait(token)); // the type's or pool's rate: back to waiting, attempt unspent
      }
    }
    if ((await c.gate.admit(id)) === 'DENIED') return giveBack(() => job.moveToWait(token));
    c.jobs.set(token, job);
    if (c.jobs.size > JOBS_KEPT) c.jobs.delete(c.jobs.keys().next().value!);
    this.#tell(c, job, 'active', { attempt: job.attemptsMade + 1 });
    if (tracingOn() && job.attemptsMade === 0) pastSpan(`wait ${c.type.name}`, { parent: contextOf(env.trace), startTime: job.timestamp, attributes: { 'switchyard.task.id': id } });
    return leaseOf(c, job, env, payload, token, this.#o.config.lockMs);
  }

  async #complete(c: Counter, job: Job<TaskEnvelope>, token: string, output: unknown): Promise<CommitState> {
    let result: unknown;
    try {
      result = await commitResult(c.steps, job, job.data, output);
    } catch (err) {
      // The result failed the type's schema (or cannot be stored): the attempt fails with that error, dead (settled above).
      return this.#fail(c, job, token, err as Error, 'success', undefined, true);
    }
    const attempt = job.attemptsMade + 1;
    try {
      await job.moveToCompleted(result, token, false);
    } catch {
      return 'conflict';
    }
    this.#ended(c, job, 'success');
    c.metrics.completed(job);
    this.#tell(c, job, 'completed');
    this.#traceAttempt(c, job, attempt, 'completed');
    return 'completed';
  }

  /** Fails the attempt: retried while attempts remain (unless fatal), else dead, its node and callback told first. */
  async #fail(c: Counter, job: Job<TaskEnvelope>, token: string, verdict: Error, outcome: PoolOutcome, retryAfterMs?: number, settled = false): Promise<CommitState> {
    const final = isFinalFailure(verdict, job);
    if (final && !settled) await settleDead(c.steps, job.data, job, verdict.message);
    const attempt = job.attemptsMade + 1;
    try {
      await this.#moveFailed(c, job, token, verdict);
    } catch {
      return 'conflict';
    }
    if (retryAfterMs !== undefined) await c.gate.hold(retryAfterMs).catch(() => undefined);
    this.#ended(c, job, outcome);
    this.#traceAttempt(c, job, attempt, final ? 'dead' : 'retry');
    return final ? 'dead' : 'retrying';
  }

  async #moveFailed(c: Counter, job: Job<TaskEnvelope>, token: string, err: Error): Promise<void> {
    await job.moveToFailed(err, token, false);
    c.metrics.failed(job);
    const state: TaskEventState = !job.finishedOn ? 'failed' : job.failedReason?.startsWith(CANCELLED_PREFIX) ? 'cancelled' : 'dead';
    this.#tell(c, job, state, { attempt: job.attemptsMade, error: err.message });
  }

  /** The attempt ended: its key's slot is freed and the breaker told. */
  #ended(c: Counter, job: Job<TaskEnvelope>, outcome: PoolOutcome): void {
    const key = job.data.concurrency?.key;
    if (key !== undefined) c.slots.release(job, key);
    c.gate.settled(job.id ?? '', c.gate.state === 'CLOSED' ? 'CLOSED' : 'PROBE', outcome);
  }

  #tell(c: Counter, job: Job<TaskEnvelope>, state: TaskEventState, more: { attempt?: number; error?: string } = {}): void {
    const w = job.data?.workflow;
    this.#o.events.append({ kind: 'task', task: job.id ?? '', type: c.ref.type, pool: c.ref.pool, state, ...more, ...(w ? { run: w.run, node: w.node } : {}), at: Date.now() });
  }

  /** The attempt's span, recorded when it ends (it spans two requests, maybe to two API processes). */
  #traceAttempt(c: Counter, job: Job<TaskEnvelope>, attempt: number, outcome: string): void {
    if (!tracingOn()) return;
    const attributes = { 'switchyard.task.id': job.id ?? '', 'switchyard.pool': c.ref.pool, 'switchyard.attempt': attempt, 'switchyard.attempt.outcome': outcome, 'switchyard.worker.protocol': 'http' };
    pastSpan(`attempt ${c.type.name}`, { parent: contextOf(job.data?.trace), startTime: job.processedOn ?? Date.now(), attributes });
  }

  /** The leased job: remembered here, or read (it was leased by another API process, or forgotten). */
  async #job(c: Counter, r: LeaseRef): Promise<Job<TaskEnvelope> | undefined> {
    const known = c.jobs.get(r.lease);
    if (known?.id === r.task) return known;
    try {
      return (await Job.fromId<TaskEnvelope>(c.worker, r.task)) ?? undefined;
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return undefined; // an id naming one of the queue's own keys: no such task
      throw err;
    }
  }

  #nap(queue: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(queue) ?? new Set<() => void>();
      this.#waiting.set(queue, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * The pool's parts, for a request that names a pool by its worker's id alone (extend, results): only a
   * pool some worker registered in has any (Switchyard's catalogue of pool queues); a made-up one gets
   * none, and nothing is made or written for it.
   */
  async #known(ref: PoolRef): Promise<Counter | undefined> {
    this.#o.catalogue.get(ref.type); // an undeclared type: 404
    const name = queueName(ref);
    if (!this.#counters.has(name) && !(await this.#o.redis.sismember(keys(this.#o.config.prefix).queueCatalogue, name))) return undefined;
    return this.#counter(ref);
  }

  /** The pool's parts in this process, made on first use. */
  #counter(ref: PoolRef): Promise<Counter> {
    const name = queueName(ref);
    let c = this.#counters.get(name);
    if (!c) {
      c = this.#build(ref);
      this.#counters.set(name, c);
      c.catch(() => this.#counters.delete(name));
    }
    return c;
  }

  async #build(ref: PoolRef): Promise<Counter> {
    const { redis, subscriber, config, log: parent } = this.#o;
    const type = this.#o.catalogue.get(ref.type);
    const log = parent.child({ pool: `${ref.type}.${ref.pool}`, protocol: 'http' });
    const name = queueName(ref);
    const metrics = new AgentMetrics(redis, config.prefix, `http.${this.#instance}.${ref.type}.${ref.pool}`, ref, true);
    const gate = new PoolGate({ redis, subscriber, prefix: config.prefix, ref, policy: type.breaker, log, onChange: () => this.wake(name), limits: type.limits, onLimited: (kind) => metrics.limited(kind) });
    const slots = new KeySlots({ redis, prefix: config.prefix, type: type.name, limit: type.limits.concurrencyPerKey, leaseMs: config.lockMs, log, onHeld: () => metrics.limited('key-concurrency') });
    const items = new MapItemRunner(this.#o.runs, redis, config.prefix, name);
    const worker = new Worker<TaskEnvelope>(name, undefined, {
      connection: redis, prefix: config.prefix, name: `http-lease-desk-${this.#instance}`, lockDuration: config.lockMs,
      stalledInterval: config.stalledIntervalMs, maxStalledCount: config.maxStalled, settings: { backoffStrategy: backoffStrategy(type.defaults.backoff) }, autorun: false,
    });
    worker.on('error', (err) => log.warn({ err: err.message }, 'lease desk worker error'));
    const steps: TaskSteps = {
      definition: { type }, pool: ref.pool, log, settleNode: nodeSettler(this.#o.runs, items),
      callback: (url, taskId, state) => this.#o.callbacks.add({ kind: 'task', id: taskId, state, url }),
    };
    await gate.start();
    slots.start();
    metrics.start(config.heartbeatMs, false);
    // Expired leases go back to waiting (or fail after maxStalled): BullMQ's stalled check, run by this pool's desk.
    void worker.startStalledCheckTimer().catch((err: unknown) => log.warn({ err }, 'stalled check of the lease desk stopped'));
    return { ref, type, worker, gate, slots, metrics, items, steps, jobs: new Map() };
  }
}

const LOST = 'the lease was lost (expired, or the task was taken back): nothing was written';

const notRegistered = (id: string) => new SwitchyardError('WORKER_NOT_FOUND', `no registered worker ${JSON.stringify(id)} (its heartbeats lapsed, or it deregistered): POST /v1/workers to register again; leases it holds can still be extended and reported`);

function verdictOf(o: Extract<TaskOutcome, { status: 'failed' }>): Error {
  if (o.retry === 'fatal') return new UnrecoverableError(o.error);
  return o.retryAfterMs !== undefined ? new RetryAfterError(o.retryAfterMs, o.error) : new Error(o.error);
}

const timeoutOf = (c: Counter, job: Job<TaskEnvelope>): number => job.data?.timeoutMs ?? c.type.defaults.timeoutMs;
const deadlineOf = (c: Counter, job: Job<TaskEnvelope>): number => (job.processedOn ?? Date.now()) + timeoutOf(c, job);

function leaseOf(c: Counter, job: Job<TaskEnvelope>, env: TaskEnvelope, payload: unknown, token: string, leaseMs: number): Lease {
  const w = env.workflow;
  return {
    task: job.id ?? '', lease: token, type: c.type.name, payload,
    attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, idempotencyKey: env.key ?? job.id ?? '',
    timeoutMs: timeoutOf(c, job), deadline: deadlineOf(c, job), leaseMs,
    ...(env.deps ? { deps: env.deps } : {}),
    ...(w ? { workflow: { runId: w.run, nodeId: w.node, compensating: w.undo === true, ...(w.item !== undefined ? { item: w.item } : {}) } } : {}),
    ...(env.trace?.traceparent ? { traceparent: env.trace.traceparent } : {}),
    ...(env.trace?.tracestate ? { tracestate: env.trace.tracestate } : {}),
  };
}
