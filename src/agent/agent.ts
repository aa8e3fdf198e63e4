/**
 * The agent runtime: one BullMQ Worker pulling from one pool queue. It checks the envelope and
 * payload before the handler runs and the result after (a bad job fails without retries and
 * never takes the process down), bounds each attempt by timeoutMs, and shuts down gracefully:
 * stop pulling, let in-flight tasks finish within the grace period, then put the rest back to
 * waiting without spending an attempt.
 */
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

const SHUTDOWN = Symbol('agent shutdown');

export class Agent {
  readonly id: string;
  readonly type: AgentType;
  readonly pool: string;
  readonly #worker: Worker<TaskEnvelope>;
  readonly #redis: Redis;
  readonly #log: Logger;
  readonly #graceMs: number;
  #closing?: Promise<void>;
  #shuttingDown = false;

  private constructor(opts: AgentOptions, redis: Redis) {
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
    this.#worker.on('failed', (job, err) => {
      if (job) this.#log.warn({ taskId: job.id, attempt: job.attemptsMade, err: err.message }, 'task attempt failed');
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

    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new TimeoutError(env.timeoutMs)), env.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    let log: Logger | undefined;
    const baseLog = this.#log;
    const ctx: TaskContext = {
      taskId: job.id ?? '',
      type: type.name,
      pool: this.pool,
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      idempotencyKey: env.key ?? job.id ?? '',
      signal: combined,
      get log() {
        return (log ??= baseLog.child({ taskId: job.id }));
      },
      progress: (value) => job.updateProgress(value),
    };
    let output: unknown;
    try {
      output = await Promise.race([
        Promise.resolve().then(() => definition.handler(payload.data, ctx)),
        new Promise<never>((_, reject) => {
          const onAbort = () => reject(this.#shuttingDown && !timeout.signal.aborted ? SHUTDOWN : combined.reason);
          if (combined.aborted) onAbort();
          else combined.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      if (err === SHUTDOWN) {
        // Past the grace period: give the task back without spending an attempt.
        await job.moveToWait(token);
        throw new WaitingError('agent shut down before the task finished; back to waiting');
      }
      if (isNonRetryable(err)) throw new UnrecoverableError(err instanceof Error ? err.message : String(err));
      throw err instanceof Error ? err : new Error(String(err));
    } finally {
      clearTimeout(timer);
    }
    const result = type.result.safeParse(output);
    if (!result.success) {
      throw new UnrecoverableError(`result of ${type.name} is invalid: ${summarize(toFieldIssues(result.error, 'result'))}`);
    }
    return result.data;
  }

  /** Stops pulling; waits up to the grace period for in-flight tasks, then returns the rest to waiting. */
  close(graceMs = this.#graceMs): Promise<void> {
    this.#closing ??= (async () => {
      this.#log.info({ graceMs }, 'agent stopping: no new tasks, waiting for in-flight ones');
      const timer = setTimeout(() => {
        this.#shuttingDown = true;
        this.#worker.cancelAllJobs('agent shutting down');
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
