/**
 * What an agent does with one task: check the envelope and payload, run the handler with a hard
 * timeout, check the result, and tell BullMQ what to do when it fails (retry, fail for good, or
 * put the task back untouched when the agent shuts down).
 */
import { SpanKind } from '@opentelemetry/api';
import { annotate, contextOf, inSpan, pastSpan, tracingOn } from '../config/tracing.ts';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Admission, BreakerOpenError, SharedBreaker } from '../breaker/breaker.ts';
import { isNonRetryable, retryAfterMs, TimeoutError } from '../model/errors.ts';
import type { Logger } from '../config/logger.ts';
import { envelopeSchema, workflowPlace, type TaskEnvelope, type WorkflowPlace } from '../model/task-envelope.ts';
import { CANCELLED_PREFIX } from '../task/view.ts';
import { summarize, toFieldIssues } from '../model/validation.ts';
import type { TaskContext, WorkerDefinition } from './worker-definition.ts';
import type { Attempt, InFlight } from './in-flight.ts';
import type { NodeInfo } from '../workflow/run-store.ts';
import { taskLogFields } from '../model/task-id.ts';
import type { KeySlots } from '../task/key-slots.ts';
import { deferred } from '../task/deferral.ts';

type WorkflowRef = NonNullable<TaskEnvelope['workflow']>;
const NO_DEPS: Readonly<Record<string, unknown>> = Object.freeze({});

/** Abort reasons given to BullMQ's per-job signal. */
export const TIMEOUT = 'switchyard:timeout';
export const SHUTDOWN = 'switchyard:shutdown';

/** What a task's outcome says about its pool: `neutral` when the handler judged the request itself (fatal). */
export type PoolOutcome = 'success' | 'failure' | 'neutral';

/**
 * What checking a task and committing its end take: an agent's processor, and the HTTP worker
 * protocol's lease desk (lease-desk.ts), which runs the same steps for a worker in another process.
 */
export interface TaskSteps {
  definition: Pick<WorkerDefinition, 'type'>;
  pool: string;
  log: Logger;
  /** Records how a workflow node (or compensation, or map item: `job`) ended, before its job finishes (see src/workflow/engine.ts). */
  settleNode(w: WorkflowRef, outcome: 'done' | 'dead', payload: string, info: NodeInfo, job: Job<TaskEnvelope>): Promise<void>;
  /** Queues the delivery of a task's callback (its request's), before its job completes or fails for good. */
  callback?(url: string, taskId: string, state: 'completed' | 'dead' | 'cancelled'): Promise<void>;
}

export interface ProcessorHooks extends TaskSteps {
  definition: WorkerDefinition;
  /** The attempts this agent is running: deadlines, signals, cancel and shutdown. */
  inFlight: InFlight;
  /** Slots of concurrency keys: taken before a keyed task runs (held when its key is at its limit), freed when it ends. */
  slots?: Pick<KeySlots, 'take' | 'release'>;
  /**
   * Takes a token of each of the type's rates that applies (throws RateLimitError when the type or
   * pool has none yet; returns how long the task's key waits when its key has none, else 0).
   */
  rate?: (taskId: string, concurrencyKey: string | undefined) => Promise<number>;
  /** A handler threw RetryAfterError: the whole pool waits that long. */
  holdPool?: (ms: number) => Promise<void>;
  /** Puts a task off without spending or starting an attempt (src/task/deferral.ts). */
  defer(job: Job<TaskEnvelope>, token: string | undefined, untilMs: number): Promise<void>;
  /** Asks the pool's breaker before running (sync while it is CLOSED: no Redis call). */
  admit(jobId: string): Admission | Promise<Admission>;
  /** Reports how the run went, to the breaker (as a probe result when admitted as one). */
  settled(jobId: string, admission: Admission, outcome: PoolOutcome): void;
  /** A shared breaker named by the handler (ctx.breaker). */
  namedBreaker(name: string): SharedBreaker;
  /** Called when a handler run starts and ends, for the agent's load and error-rate figures. */
  started(): void;
  /**
   * The task's handler is about to be called (its gates passed): what must happen first, if anything
   * (a batched worker's start mark, src/agent/batched-worker.ts).
   */
  beforeHandler?(job: Job<TaskEnvelope>): Promise<void> | undefined;
  finished(ok: boolean): void;
}

/**
 * Two parameters on purpose: BullMQ creates an AbortController per job for processors that take a
 * third (signal) one; our InFlight table does that job more cheaply.
 */
export type Processor = (job: Job<TaskEnvelope>, token: string | undefined) => Promise<unknown>;

function looksLikeEnvelope(d: unknown): d is TaskEnvelope {
  if (typeof d !== 'object' || d === null || !('payload' in d)) return false;
  const e = d as Partial<TaskEnvelope>;
  return (
    (e.routing === undefined || (typeof e.routing === 'object' && e.routing !== null && typeof e.routing.pool === 'string')) &&
    (e.timeoutMs === undefined || (Number.isInteger(e.timeoutMs) && e.timeoutMs > 0)) &&
    (e.key === undefined || typeof e.key === 'string') &&
    (e.backoff === undefined || envelopeSchema.shape.backoff.safeParse(e.backoff).success)
  );
}

const isBreakerOpen = (err: unknown): boolean => typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'BREAKER_OPEN';

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/** The handler's context; a class so that building one per task stays cheap (the logger is lazy). */
class AttemptContext implements TaskContext {
  readonly taskId: string;
  readonly type: string;
  readonly attempt: number;
  readonly runs: number;
  readonly maxAttempts: number;
  readonly idempotencyKey: string;
  readonly deps: Readonly<Record<string, unknown>>;
  readonly workflow?: WorkflowPlace;
  #log: Logger | undefined;

  constructor(
    private readonly job: Job<TaskEnvelope>,
    env: TaskEnvelope,
    readonly pool: string,
    private readonly run: Attempt,
    private readonly parentLog: Logger,
    private readonly breakers: (name: string) => SharedBreaker,
  ) {
    this.taskId = job.id ?? '';
    this.type = job.name;
    this.attempt = job.attemptsMade + 1;
    this.runs = job.attemptsStarted ?? this.attempt;
    this.maxAttempts = job.opts.attempts ?? 1;
    this.idempotencyKey = env.key ?? this.taskId;
    this.deps = env.deps ?? NO_DEPS;
    if (env.workflow) this.workflow = workflowPlace(env.workflow);
  }

  get signal(): AbortSignal {
    return this.run.signal;
  }

  get log(): Logger {
    return (this.#log ??= this.parentLog.child(taskLogFields(this.taskId)));
  }

  progress(value: number | object): Promise<void> {
    return this.job.updateProgress(value);
  }

  breaker(name: string): SharedBreaker {
    return this.breakers(name);
  }
}

/**
 * When the job's signal fired, its reason decides what the failure means, whatever the handler
 * threw on the way out.
 */
async function classify(err: unknown, job: Job<TaskEnvelope>, token: string | undefined, attempt: Attempt, timeoutMs: number): Promise<Error> {
  if (isBreakerOpen(err)) {
    // A downstream breaker the handler guards is open: try again when it admits calls, attempt unspent.
    await job.moveToDelayed(Date.now() + (err as BreakerOpenError).retryAfterMs, token);
    return new DelayedError(`${(err as Error).message}; delayed`);
  }
  if (attempt.aborted) {
    if (attempt.reason === SHUTDOWN) {
      // Past the grace period: give the task back without spending an attempt.
      await job.moveToWait(token);
      return new WaitingError('agent shut down before the task finished; back to waiting');
    }
    if (attempt.reason === TIMEOUT) return new TimeoutError(timeoutMs);
    return new UnrecoverableError(`${CANCELLED_PREFIX}${String(attempt.reason)}`);
  }
  if (isNonRetryable(err)) return new UnrecoverableError(err instanceof Error ? err.message : describeThrown(err));
  return err instanceof Error ? err : new Error(describeThrown(err));
}

/** A message for what a handler threw that is not an Error (a string, null, a plain object). */
function describeThrown(value: unknown): string {
  if (typeof value === 'string') return value;
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return `the handler threw ${shown.length > 500 ? `${shown.slice(0, 500)}…` : shown} (not an Error)`;
}

/** True when BullMQ will not run this task again: a fatal verdict or the last attempt. */
export function isFinalFailure(verdict: Error, job: Job<TaskEnvelope>): boolean {
  if (verdict instanceof DelayedError || verdict instanceof WaitingError) return false;
  return verdict instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

const nodeInfo = (job: Job<TaskEnvelope>, pool: string): NodeInfo => ({
  pool,
  attempts: job.attemptsMade + 1,
  ...(job.processedOn ? { startedAt: job.processedOn } : {}),
});

/**
 * A task that will not run again: a workflow node tells its run now, before its job fails (should
 * this fail, the engine's sweep finds the failed job and records it); a task with a callback queues
 * its delivery (should this fail, the job fails anyway and the callback is lost: logged).
 */
export async function settleDead(h: TaskSteps, env: TaskEnvelope, job: Job<TaskEnvelope>, message: string): Promise<void> {
  if (env.callback && h.callback) {
    await h.callback(env.callback.url, job.id ?? '', message.startsWith(CANCELLED_PREFIX) ? 'cancelled' : 'dead').catch((e: unknown) =>
      h.log.warn({ ...taskLogFields(job.id), err: e instanceof Error ? e.message : String(e) }, 'could not queue the callback of a dead task'),
    );
  }
  if (!env.workflow) return;
  await h.settleNode(env.workflow, 'dead', message, nodeInfo(job, h.pool), job).catch((e: unknown) =>
    h.log.warn({ ...taskLogFields(job.id), err: e instanceof Error ? e.message : String(e) }, 'could not record a failed workflow node; the sweep will'),
  );
}

export function createProcessor(h: ProcessorHooks): Processor {
  const run = processTask(h);
  const type = h.definition.type.name;
  return (job, token) => {
    if (!tracingOn()) return run(job, token);
    // The producer's trace continues here: the wait in the pool (first attempt), then this attempt, active
    // while the handler runs, so its own spans hang under it.
    // Few attributes: each is encoded with every span (the type is in the name, the rest in the enqueue span).
    const parent = contextOf(job.data?.trace);
    const id = job.id ?? '';
    if (job.attemptsMade === 0) pastSpan(`wait ${type}`, { parent, startTime: job.timestamp, attributes: { 'switchyard.task.id': id } });
    const attributes = { 'switchyard.task.id': id, 'switchyard.pool': h.pool, 'switchyard.attempt': job.attemptsMade + 1 };
    return inSpan(`attempt ${type}`, { kind: SpanKind.CONSUMER, parent, attributes }, () => run(job, token));
  };
}

function processTask(h: ProcessorHooks): Processor {
  return async (job, token) => {
    const { env, payload } = await checkedTask(h, job);
    // A keyed task first takes a slot of its key (before the rate and the breaker: a held task spends neither).
    const slot = env.concurrency && h.slots ? await h.slots.take(job, token) : false;
    try {
      const output = await runAttempt(h, job, token, env, payload);
      return await commitResult(h, job, env, output);
    } finally {
      if (slot) h.slots!.release(job);
    }
  };
}

/** The job's envelope and validated payload; a job that must not run (not ours, poison, bad payload) fails for good. */
export async function checkedTask(h: TaskSteps, job: Job<TaskEnvelope>): Promise<{ env: TaskEnvelope; payload: unknown }> {
  const type = h.definition.type;
  // A cheap shape check on the hot path; zod runs only to explain a job that fails it.
  if (!looksLikeEnvelope(job.data)) {
    const parsed = envelopeSchema.safeParse(job.data);
    const why = parsed.success ? 'unexpected shape' : summarize(toFieldIssues(parsed.error));
    throw new UnrecoverableError(`task envelope is invalid (not written by Switchyard?): ${why}`);
  }
  const env = job.data;
  // A run whose agent died (crash, OOM, lost lock) counts against the attempts like a failed one
  // (BullMQ counts those in stalledCounter): a task that kills its agent every time (a poison
  // pill) dies after its attempts instead of taking the pool's agents down one after another.
  const spent = job.attemptsMade + (job.stalledCounter ?? 0);
  const max = job.opts.attempts ?? 1;
  if (spent >= max) {
    const poison = new UnrecoverableError(`its agent died during ${job.stalledCounter} of its ${spent} runs (crash or lost lock); attempts=${max} spent, not running it again`);
    await settleDead(h, env, job, poison.message);
    throw poison;
  }
  const payload = type.payload.safeParse(env.payload);
  if (!payload.success) {
    const invalid = new UnrecoverableError(`payload of ${type.name} is invalid: ${summarize(toFieldIssues(payload.error, 'payload'))}`);
    await settleDead(h, env, job, invalid.message);
    throw invalid;
  }
  return { env, payload: payload.data };
}

/** One attempt: the pool gate's admission, the handler under its timeout, the outcome reported to the breaker. */
async function runAttempt(h: ProcessorHooks, job: Job<TaskEnvelope>, token: string | undefined, env: TaskEnvelope, payload: unknown): Promise<unknown> {
  const type = h.definition.type;
  // BullMQ's own signal (one per job) also carries our timeout: the timer cancels the job through
  // the worker, so no second AbortController per task (they cost ~5 µs each on Node 20).
  const jobId = job.id ?? '';
  if (h.rate) {
    // Before the breaker: a probe permit is not held while waiting for a token.
    const keyWaitMs = await h.rate(jobId, env.concurrency?.key);
    if (keyWaitMs > 0) {
      await h.defer(job, token, Date.now() + keyWaitMs);
      throw deferred(`concurrency key ${JSON.stringify(env.concurrency?.key)} is at its rate: put off ${keyWaitMs} ms`);
    }
  }
  const gate = h.admit(jobId);
  const admission = typeof gate === 'string' ? gate : await gate;
  annotate({ 'switchyard.breaker.admission': admission });
  // The pool's breaker is open (or its probe budget is taken): back to waiting, attempt unspent.
  if (admission === 'DENIED') throw Worker.RateLimitError();
  const before = h.beforeHandler?.(job);
  if (before) await before;
  const timeoutMs = env.timeoutMs ?? type.defaults.timeoutMs;
  const attempt = h.inFlight.begin(jobId, timeoutMs);
  const ctx = new AttemptContext(job, env, h.pool, attempt, h.log, h.namedBreaker);
  h.started();
  let ok = false;
  let outcome: PoolOutcome = 'failure';
  try {
    // Cancelled while it waited in the agent's local queue: the handler does not run.
    if (attempt.aborted) throw new Error('attempt aborted before it started');
    const pending = h.definition.handler(payload, ctx);
    // Synchronous handlers skip the race; async ones race the attempt's abort, so a handler that
    // ignores its signal still cannot hold the attempt past its timeout.
    const output = isThenable(pending) ? await attempt.race(pending) : pending;
    ok = true;
    outcome = 'success';
    return output;
  } catch (err) {
    const retryAfter = retryAfterMs(err);
    if (retryAfter !== undefined && h.holdPool) {
      await h.holdPool(retryAfter).catch((e: unknown) => h.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not hold the pool for a RetryAfterError'));
    }
    const verdict = await classify(err, job, token, attempt, timeoutMs);
    const final = isFinalFailure(verdict, job);
    annotate({ 'switchyard.attempt.outcome': final ? 'dead' : verdict instanceof DelayedError ? 'delayed' : verdict instanceof WaitingError ? 'back to waiting' : 'retry' });
    if (final) await settleDead(h, env, job, verdict.message);
    // Fatal errors, shutdowns and delays say nothing about the pool's health.
    if (!(verdict instanceof TimeoutError) && (verdict instanceof UnrecoverableError || verdict instanceof WaitingError || verdict instanceof DelayedError)) {
      outcome = 'neutral';
    }
    throw verdict;
  } finally {
    h.inFlight.end(attempt);
    h.finished(ok);
    h.settled(jobId, admission, outcome);
  }
}

/** The handler's output, validated and storable as JSON; a workflow node settles before its job completes. */
export async function commitResult(h: TaskSteps, job: Job<TaskEnvelope>, env: TaskEnvelope, output: unknown): Promise<unknown> {
  const type = h.definition.type;
  const result = type.result.safeParse(output);
  if (!result.success) {
    const invalid = new UnrecoverableError(`result of ${type.name} is invalid: ${summarize(toFieldIssues(result.error, 'result'))}`);
    await settleDead(h, env, job, invalid.message);
    throw invalid;
  }
  // BullMQ stores the result as JSON: one that cannot be (a cycle, a BigInt) fails here, once, not
  // inside BullMQ after the handler ran, where it would be retried as if the handler had failed.
  let json: string;
  try {
    json = JSON.stringify(result.data ?? null);
  } catch (err) {
    const unstorable = new UnrecoverableError(`result of ${type.name} cannot be stored as JSON: ${err instanceof Error ? err.message : String(err)}`);
    await settleDead(h, env, job, unstorable.message);
    throw unstorable;
  }
  // Settled before the job completes: a crash in between re-runs the node, and settling again is a no-op.
  if (env.workflow) await h.settleNode(env.workflow, 'done', json, nodeInfo(job, h.pool), job);
  // Likewise the callback: queued again after a crash, it is the same delivery (a no-op).
  if (env.callback && h.callback) await h.callback(env.callback.url, job.id ?? '', 'completed');
  return result.data;
}
