/**
 * The agent runtime: one BullMQ Worker pulling from one pool queue. It checks the envelope and
 * payload before the handler runs and the result after (a bad job fails without retries and
 * never takes the process down), bounds each attempt by timeoutMs, and shuts down gracefully:
 * stop pulling, let in-flight tasks finish within the grace period, then put the rest back to
 * waiting without spending an attempt.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AgentType } from '../agent-type/define.ts';
import type { Config } from '../config/env.ts';
import { isNonRetryable, TimeoutError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { createRedis } from '../redis/connection.ts';
import { queueName, poolLabel } from '../redis/keys.ts';
import { envelopeSchema, type TaskEnvelope } from '../task/envelope.ts';
import { registerPoolQueue } from '../task/pool-queues.ts';
import { summarize, toFieldIssues } from '../validation.ts';
import type { TaskContext, WorkerDefinition } from './worker-definition.ts';

export interface AgentOptions {
  definition: WorkerDefinition;
  redisUrl: string;
  config: Pick<Config, 'prefix' | 'lockMs' | 'stalledIntervalMs' | 'maxStalled' | 'shutdownGraceMs'>;
  log: Logger;
  pool?: string;
  concurrency?: number;
}

/** Abort reasons the agent gives BullMQ's per-job signal. */
const TIMEOUT = 'switchyard:timeout';
const SHUTDOWN = 'switchyard:shutdown';
const NEVER = new AbortController().signal;

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

function raceAbort<T>(pending: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('attempt aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** The handler's context; a class so that building one per task stays cheap (the logger is lazy). */
class AttemptContext implements TaskContext {
  readonly taskId: string;
  readonly type: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly idempotencyKey: string;
  #log: Logger | undefined;

  constructor(
    private readonly job: Job<TaskEnvelope>,
    env: TaskEnvelope,
    readonly pool: string,
    readonly signal: AbortSignal,
    private readonly parentLog: Logger,
  ) {
    this.taskId = job.id ?? '';
    this.type = job.name;
    this.attempt = job.attemptsMade + 1;
    this.maxAttempts = job.opts.attempts ?? 1;
    this.idempotencyKey = env.key ?? this.taskId;
  }

  get log(): Logger {
    return (this.#log ??= this.parentLog.child({ taskId: this.taskId }));
  }

  progress(value: number | object): Promise<void> {
    return this.job.updateProgress(value);
  }
}

export interface AgentEvents {
  /** A task finished successfully on this agent. */
  completed: [taskId: string];
  /** An attempt failed (it may still be retried). */
  failed: [taskId: string, error: Error];
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly id: string;
  readonly type: AgentType;
  readonly pool: string;
  readonly #worker: Worker<TaskEnvelope>;
  readonly #redis: Redis;
  readonly #log: Logger;
  readonly #graceMs: number;
  #closing?: Promise<void>;

  private constructor(opts: AgentOptions, redis: Redis) {
    super();
    const { definition, config } = opts;
    this.type = definition.type;
    this.pool = opts.pool ?? 'default';
    this.id = `${poolLabel({ type: this.type.name, pool: this.pool })}@${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.#redis = redis;
    this.#graceMs = config.shutdownGraceMs;
    this.#log = opts.log.child({ agent: this.id, type: this.type.name, pool: this.pool });
    this.#worker = new Worker<TaskEnvelope>(queueName({ type: this.type.name, pool: this.pool }), (job, token, signal) => this.#process(definition, job, token, signal), {
      connection: redis,
      prefix: config.prefix,
      name: this.id,
      concurrency: opts.concurrency ?? 10,
      lockDuration: config.lockMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: config.maxStalled,
      autorun: false,
    });
    this.#worker.on('error', (err) => this.#log.error({ err }, 'worker error'));
    this.#worker.on('completed', (job) => this.emit('completed', job.id ?? ''));
    this.#worker.on('failed', (job, err) => {
      if (job) this.#log.warn({ taskId: job.id, attempt: job.attemptsMade, err: err.message }, 'task attempt failed');
      this.emit('failed', job?.id ?? '', err);
    });
    this.#worker.on('stalled', (id) => this.#log.warn({ taskId: id }, 'task stalled: its agent stopped renewing the lock; re-queued'));
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    const redis = createRedis(opts.redisUrl, 'blocking', 'switchyard-agent');
    const agent = new Agent(opts, redis);
    await registerPoolQueue(redis, opts.config.prefix, { type: agent.type.name, pool: agent.pool });
    void agent.#worker.run().catch((err: unknown) => agent.#log.error({ err }, 'worker stopped'));
    await agent.#worker.waitUntilReady();
    agent.#log.info({ concurrency: opts.concurrency ?? 10 }, 'agent started');
    return agent;
  }

  async #process(definition: WorkerDefinition, job: Job<TaskEnvelope>, token: string | undefined, signal: AbortSignal | undefined) {
    const type = definition.type;
    const envelope = envelopeSchema.safeParse(job.data);
    if (!envelope.success) {
      throw new UnrecoverableError(`task envelope is invalid (not written by Switchyard?): ${summarize(toFieldIssues(envelope.error))}`);
    }
    const env = envelope.data;
    const payload = type.payload.safeParse(env.payload);
    if (!payload.success) {
      throw new UnrecoverableError(`payload of ${type.name} is invalid: ${summarize(toFieldIssues(payload.error, 'payload'))}`);
    }

    // BullMQ's own signal (one per job) also carries our timeout: the timer cancels the job through
    // the worker, so no second AbortController per task (they cost ~5 µs each on Node 20).
    const jobId = job.id ?? '';
    const timer = setTimeout(() => this.#worker.cancelJob(jobId, TIMEOUT), env.timeoutMs);
    const ctx = new AttemptContext(job, env, this.pool, signal ?? NEVER, this.#log);
    let output: unknown;
    try {
      const pending = definition.handler(payload.data, ctx);
      // Synchronous handlers skip the race; async ones race the signal, so a handler that ignores
      // its signal still cannot hold the attempt past its timeout.
      output = !isThenable(pending) ? pending : signal ? await raceAbort(pending, signal) : await pending;
    } catch (err) {
      throw await this.#classify(err, job, token, signal, env.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
    const result = type.result.safeParse(output);
    if (!result.success) {
      throw new UnrecoverableError(`result of ${type.name} is invalid: ${summarize(toFieldIssues(result.error, 'result'))}`);
    }
    return result.data;
  }

  /**
   * Turns what a handler threw into what BullMQ should do with the attempt. When the job's signal
   * fired, its reason decides, whatever the handler threw on the way out.
   */
  async #classify(err: unknown, job: Job<TaskEnvelope>, token: string | undefined, signal: AbortSignal | undefined, timeoutMs: number): Promise<Error> {
    if (signal?.aborted) {
      if (signal.reason === SHUTDOWN) {
        // Past the grace period: give the task back without spending an attempt.
        await job.moveToWait(token);
        return new WaitingError('agent shut down before the task finished; back to waiting');
      }
      if (signal.reason === TIMEOUT) return new TimeoutError(timeoutMs);
      return new UnrecoverableError(`cancelled: ${String(signal.reason)}`);
    }
    if (isNonRetryable(err)) return new UnrecoverableError(err instanceof Error ? err.message : String(err));
    return err instanceof Error ? err : new Error(String(err));
  }

  /** Stops pulling; waits up to the grace period for in-flight tasks, then returns the rest to waiting. */
  close(graceMs = this.#graceMs): Promise<void> {
    this.#closing ??= (async () => {
      this.#log.info({ graceMs }, 'agent stopping: no new tasks, waiting for in-flight ones');
      const timer = setTimeout(() => {
        this.#worker.cancelAllJobs(SHUTDOWN);
      }, graceMs);
      try {
        await this.#worker.close();
      } finally {
        clearTimeout(timer);
        await this.#redis.quit().catch(() => this.#redis.disconnect());
      }
      this.#log.info('agent stopped');
    })();
    return this.#closing;
  }
}
