/**
 * The API's side of the worker protocol over HTTP (src/model/worker-protocol.ts): agents in any
 * language register in the same registry as Node agents (so routing, weights and health treat them
 * alike), lease tasks of their pool, extend their leases and report how each ended.
 *
 * Stateless across API processes: a lease is the task's BullMQ lock token, so any API process can
 * extend it or commit its end, and BullMQ's own lock check refuses a stale one (409, nothing written).
 * An expired lease is re-queued by BullMQ's stalled check, which each pool's worker runs (lease-pool.ts).
 * The steps around the handler are the Node agent's own (processor.ts): the envelope, poison and
 * payload checks, concurrency keys, the type's rates, the pool breaker's admission, then the result
 * schema, the workflow settle and the callback, and the retry policy. Before a reported end settles
 * anything (a node, a callback), its lease is extended: the token check and the settle hold together.
 * A cancel reaches the worker on its next heartbeat or extend (kept in Redis by TaskCanceller).
 */
import { randomBytes } from 'node:crypto';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../config/env.ts';
import { contextOf, pastSpan, tracingOn } from '../config/tracing.ts';
import { taskEvent, type EventLog } from '../events/event-log.ts';
import type { AgentRecord } from '../model/agent-record.ts';
import { RetryAfterError, SwitchyardError, TimeoutError } from '../model/errors.ts';
import { isServing } from '../model/health-state.ts';
import { queueName, type PoolRef } from '../model/names.ts';
import { workflowPlace, type TaskEnvelope } from '../model/task-envelope.ts';
import {
  workerId, workerPool,
  type CommitState, type Lease, type LeaseRef, type LeaseRequest, type LeaseState, type RegisteredWorker, type TaskOutcome, type WorkerHeartbeat, type WorkerRegistration,
} from '../model/worker-protocol.ts';
import { keys } from '../redis/keys.ts';
import type { Registry, RegistryTiming } from '../registry/registry.ts';
import { defer } from '../task/deferral.ts';
import { COMMITTED, commitCompletion } from '../task/job-batch.ts';
import { registerPoolQueue } from '../task/pool-queues.ts';
import { CANCELLED_PREFIX, failedEventState } from '../task/view.ts';
import { closeLeasePool, deadlineOf, leasedJob, openLeasePool, remember, timeoutOf, type LeasePool, type LeasePoolDeps } from './lease-pool.ts';
import { checkedTask, commitResult, isFinalFailure, settleDead, type PoolOutcome } from './processor.ts';

export type DeskConfig = Pick<Config, 'prefix' | 'lockMs' | 'stalledIntervalMs' | 'maxStalled' | 'heartbeatMs' | 'agentTtlMs'>;

export interface LeaseDeskOptions extends Omit<LeasePoolDeps, 'instance' | 'wake'> {
  config: DeskConfig;
  registry: Registry;
  events: EventLog;
}

/** What a lease request gets: the tasks, or why it gets none now. */
export interface LeaseGrant {
  leases: Lease[];
  paused?: string;
}

/** A long poll looks again after 5 ms, then 10, 20, ... at most this long (sooner when this process enqueues to the pool). */
const MAX_POLL_MS = 100;

export function poolOfWorker(id: string): PoolRef {
  const ref = workerPool(id);
  if (!ref) throw new SwitchyardError('WORKER_NOT_FOUND', `${JSON.stringify(id)} is not a worker id; POST /v1/workers registers one`);
  return ref;
}

export class LeaseDesk {
  readonly #o: LeaseDeskOptions;
  readonly #timing: RegistryTiming;
  readonly #pools = new Map<string, Promise<LeasePool>>();
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
    const id = workerId(ref, randomBytes(6).toString('hex'));
    const version = r.version ?? type.version;
    const record: AgentRecord = {
      id, type: type.name, pool: r.pool, version, capabilities: [{ name: type.name, version }], tags: r.tags,
      metadata: { ...r.metadata, protocol: 'http' }, weight: r.weight, concurrency: r.concurrency,
      host: r.host ?? 'unknown', pid: 0, startedAt: new Date().toISOString(),
    };
    await registerPoolQueue(this.#o.redis, this.#o.config.prefix, ref);
    await this.#o.registry.register(record, this.#timing);
    await this.#pool(ref);
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
  async lease(id: string, req: LeaseRequest, signal?: AbortSignal): Promise<LeaseGrant> {
    const ref = poolOfWorker(id);
    const view = await this.#o.registry.get(id);
    if (!view) throw notRegistered(id);
    if (view.draining) return { leases: [], paused: 'draining: finish the leases held, take no new ones' };
    if (!isServing(view.health)) return { leases: [], paused: `health is ${view.health}: a heartbeat saying HEALTHY or DEGRADED lets it lease` };
    const c = await this.#pool(ref);
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
    const keyed: Array<{ id: string; key: string }> = [];
    const states = await Promise.all(refs.map(async (r, i): Promise<LeaseState> => {
      const job = lost.has(r.task) ? undefined : await leasedJob(c, r);
      if (!job) return 'lost';
      const reason = asked[i];
      if (reason != null) {
        const ended = await this.#fail(c, job, r.lease, new UnrecoverableError(`${CANCELLED_PREFIX}${reason}`), 'neutral');
        if (ended !== 'conflict') await this.#o.redis.del(k.cancelAsked(queue, r.task));
        return ended === 'conflict' ? 'lost' : 'cancelled';
      }
      if (Date.now() > deadlineOf(c, job)) return (await this.#fail(c, job, r.lease, new TimeoutError(timeoutOf(c, job)), 'failure')) === 'conflict' ? 'lost' : 'timeout';
      const key = job.data?.concurrency?.key;
      if (key !== undefined) keyed.push({ id: r.task, key });
      return 'extended';
    }));
    await c.slots.renew(keyed); // the slots of the keyed ones, in one call
    refs.forEach((r, i) => states[i] !== 'extended' && c.jobs.delete(r.lease));
    return refs.map((r, i) => ({ task: r.task, lease: r.lease, state: states[i]! }));
  }

  /** Commits how leased tasks ended, each once and only while its lease holds (`conflict` otherwise: nothing written). */
  async report(id: string, outcomes: readonly TaskOutcome[]): Promise<Array<{ task: string; state: CommitState; error?: string }>> {
    const c = await this.#known(poolOfWorker(id));
    if (!c) return outcomes.map((o) => ({ task: o.task, state: 'conflict' as const, error: LOST }));
    const jobs = await Promise.all(outcomes.map((o) => leasedJob(c, o)));
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
    const counters = await Promise.all([...this.#pools.values()].map((p) => p.catch(() => undefined)));
    await Promise.all(counters.map((c) => c && closeLeasePool(c)));
  }

  /** Fetches up to `max` jobs (1, then 2, 4, ... in one call each while there are more) and admits each; leases of the admitted. */
  async #take(c: LeasePool, workerId: string, max: number): Promise<Lease[]> {
    const out: Lease[] = [];
    for (let batch = 1; out.length < max; batch = Math.min(2 * batch, max - out.length)) {
      const want = Math.min(batch, max - out.length);
      const jobs = await c.take(Array.from({ length: want }, () => `${workerId}:${this.#instance}.${(++this.#seq).toString(36)}`));
      const admitted = await Promise.all(jobs.map((j) => this.#admit(c, j.job, j.token)));
      for (const a of admitted) if (typeof a === 'object') out.push(a);
      if (jobs.length < want || admitted.some((a) => a === 'stop')) break;
    }
    return out;
  }

  /**
   * What the Node agent's processor does before the handler: checks (a bad task fails for good), the
   * key's slot, the rates and the breaker (a task refused by one goes back unspent). Answers its lease,
   * or why not: `skip` it failed its checks (dead), `stop` a limit says fetch no more now.
   */
  async #admit(c: LeasePool, job: Job<TaskEnvelope>, token: string): Promise<Lease | 'skip' | 'stop'> {
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
    remember(c, token, job);
    this.#o.events.append(taskEvent(job, c.ref, 'active', { attempt: job.attemptsMade + 1 }));
    if (tracingOn() && job.attemptsMade === 0) pastSpan(`wait ${c.type.name}`, { parent: contextOf(env.trace), startTime: job.timestamp, attributes: { 'switchyard.task.id': id } });
    return leaseOf(c, job, env, payload, token, this.#o.config.lockMs);
  }

  async #complete(c: LeasePool, job: Job<TaskEnvelope>, token: string, output: unknown): Promise<CommitState> {
    let result: unknown;
    try {
      result = await commitResult(c.steps, job, job.data, output);
    } catch (err) {
      // The result failed the type's schema (or cannot be stored): the attempt fails with that error, dead (settled above).
      return this.#fail(c, job, token, err as Error, 'success', undefined, true);
    }
    const attempt = job.attemptsMade + 1;
    try {
      if ((await commitCompletion(c.completions, job, token, result)) !== COMMITTED) return 'conflict';
    } catch {
      return 'conflict';
    }
    this.#ended(c, job, 'success');
    c.metrics.completed(job);
    this.#o.events.append(taskEvent(job, c.ref, 'completed'));
    this.#traceAttempt(c, job, attempt, 'completed');
    return 'completed';
  }

  /** Fails the attempt: retried while attempts remain (unless fatal), else dead, its node and callback told first. */
  async #fail(c: LeasePool, job: Job<TaskEnvelope>, token: string, verdict: Error, outcome: PoolOutcome, retryAfterMs?: number, settled = false): Promise<CommitState> {
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

  async #moveFailed(c: LeasePool, job: Job<TaskEnvelope>, token: string, err: Error): Promise<void> {
    await job.moveToFailed(err, token, false);
    c.metrics.failed(job);
    this.#o.events.append(taskEvent(job, c.ref, failedEventState(job), { attempt: job.attemptsMade, error: err.message }));
  }

  /** The attempt ended: its key's slot is freed and the breaker told. */
  #ended(c: LeasePool, job: Job<TaskEnvelope>, outcome: PoolOutcome): void {
    const key = job.data.concurrency?.key;
    if (key !== undefined) c.slots.release(job, key);
    c.gate.settled(job.id ?? '', c.gate.state === 'CLOSED' ? 'CLOSED' : 'PROBE', outcome);
  }

  /** The attempt's span, recorded when it ends (it spans two requests, maybe to two API processes). */
  #traceAttempt(c: LeasePool, job: Job<TaskEnvelope>, attempt: number, outcome: string): void {
    if (!tracingOn()) return;
    const attributes = { 'switchyard.task.id': job.id ?? '', 'switchyard.pool': c.ref.pool, 'switchyard.attempt': attempt, 'switchyard.attempt.outcome': outcome, 'switchyard.worker.protocol': 'http' };
    pastSpan(`attempt ${c.type.name}`, { parent: contextOf(job.data?.trace), startTime: job.processedOn ?? Date.now(), attributes });
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
  async #known(ref: PoolRef): Promise<LeasePool | undefined> {
    this.#o.catalogue.get(ref.type); // an undeclared type: 404
    const name = queueName(ref);
    if (!this.#pools.has(name) && !(await this.#o.redis.sismember(keys(this.#o.config.prefix).queueCatalogue, name))) return undefined;
    return this.#pool(ref);
  }

  /** The pool's parts in this process, made on first use. */
  #pool(ref: PoolRef): Promise<LeasePool> {
    const name = queueName(ref);
    let c = this.#pools.get(name);
    if (!c) {
      c = openLeasePool(ref, { ...this.#o, instance: this.#instance, wake: () => this.wake(name) });
      this.#pools.set(name, c);
      c.catch(() => this.#pools.delete(name));
    }
    return c;
  }
}

const LOST = 'the lease was lost (expired, or the task was taken back): nothing was written';

const notRegistered = (id: string) => new SwitchyardError('WORKER_NOT_FOUND', `no registered worker ${JSON.stringify(id)} (its heartbeats lapsed, or it deregistered): POST /v1/workers to register again; leases it holds can still be extended and reported`);

function verdictOf(o: Extract<TaskOutcome, { status: 'failed' }>): Error {
  if (o.retry === 'fatal') return new UnrecoverableError(o.error);
  return o.retryAfterMs !== undefined ? new RetryAfterError(o.retryAfterMs, o.error) : new Error(o.error);
}

function leaseOf(c: LeasePool, job: Job<TaskEnvelope>, env: TaskEnvelope, payload: unknown, token: string, leaseMs: number): Lease {
  return {
    task: job.id ?? '', lease: token, type: c.type.name, payload,
    attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, idempotencyKey: env.key ?? job.id ?? '',
    timeoutMs: timeoutOf(c, job), deadline: deadlineOf(c, job), leaseMs,
    ...(env.deps ? { deps: env.deps } : {}),
    ...(env.workflow ? { workflow: workflowPlace(env.workflow) } : {}),
    ...(env.trace?.traceparent ? { traceparent: env.trace.traceparent } : {}),
    ...(env.trace?.tracestate ? { tracestate: env.trace.tracestate } : {}),
  };
}
