/**
 * What an agent counts of its tasks (prom-client): completions, failed attempts, dead tasks, tasks
 * its flow limits stopped, and how long tasks waited and ran. Each agent publishes its counts to Redis every `intervalMs` (a key per
 * agent that expires if it stops), so one scrape of any API process sees the whole fleet
 * (fleet-metrics.ts aggregates them).
 */
import type { Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import { Counter, Histogram, Registry } from 'prom-client';
import { keys } from '../redis/keys.ts';
import { CANCELLED_PREFIX } from '../task/view.ts';
import { LIMIT_KINDS, type LimitKind } from '../model/agent-type.ts';

/** Seconds: from 1 ms to 5 min, for both waiting and running. */
type Label = 'type' | 'pool';
const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class AgentMetrics {
  readonly registry = new Registry();
  // One agent serves one pool: its series are bound to their labels once, not hashed on every task.
  readonly #completed: Counter.Internal;
  readonly #failed: Counter.Internal;
  readonly #dead: Counter.Internal;
  readonly #wait: Histogram.Internal<Label>;
  readonly #run: Histogram.Internal<Label>;
  readonly #limited: Record<LimitKind, Counter.Internal>;
  #timer: NodeJS.Timeout | undefined;
  #counted = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly agentId: string,
    labels: { type: string; pool: string },
    /** Not an agent of the registry (a lease desk's pool): listed where the scrape looks for such counts. */
    private readonly unlisted = false,
  ) {
    const registers = [this.registry];
    const labelNames = ['type', 'pool'] as const;
    this.#completed = new Counter({ name: 'switchyard_tasks_completed_total', help: 'Tasks completed', labelNames, registers }).labels(labels);
    this.#failed = new Counter({ name: 'switchyard_task_attempts_failed_total', help: 'Attempts that failed (retried or not)', labelNames, registers }).labels(labels);
    this.#dead = new Counter({ name: 'switchyard_tasks_dead_total', help: 'Tasks that ended in the dead letters (attempts spent, or fatal)', labelNames, registers }).labels(labels);
    this.#wait = new Histogram({ name: 'switchyard_task_wait_seconds', help: 'From enqueue (or retry) to the start of an attempt', labelNames, buckets: BUCKETS, registers }).labels(labels);
    const limited = new Counter({
      name: 'switchyard_tasks_limited_total',
      help: 'Tasks an agent took but did not start, by the limit that stopped them (type-rate, pool-rate, key-rate: put off for a token; key-concurrency: held for a slot of its key), and pools held by a RetryAfterError (retry-after)',
      labelNames: ['type', 'pool', 'limit'] as const,
      registers,
    });
    this.#limited = Object.fromEntries(LIMIT_KINDS.map((limit) => [limit, limited.labels({ ...labels, limit })])) as Record<LimitKind, Counter.Internal>;
    this.#run = new Histogram({ name: 'switchyard_task_run_seconds', help: 'Run time of completed attempts', labelNames, buckets: BUCKETS, registers }).labels(labels);
    // Every counter's series exists from the start, at 0: rate() and increase() over a pool that has not
    // failed yet give 0, not nothing (the dead-letters alert and the dashboard's panels rely on it).
    for (const c of [this.#completed, this.#failed, this.#dead, ...Object.values(this.#limited)]) c.inc(0);
  }

  completed(job: Job): void {
    this.#counted = true;
    this.#completed.inc();
    if (job.processedOn) {
      this.#wait.observe(Math.max(0, job.processedOn - job.timestamp) / 1000);
      if (job.finishedOn) this.#run.observe(Math.max(0, job.finishedOn - job.processedOn) / 1000);
    }
  }

  failed(job: Job): void {
    this.#counted = true;
    this.#failed.inc();
    // BullMQ sets finishedOn only when the job leaves for good (no retry left, or unrecoverable).
    if (job.finishedOn && !job.failedReason?.startsWith(CANCELLED_PREFIX)) this.#dead.inc();
  }

  /** A task did not start because of a limit, or the pool was held (see LIMIT_KINDS). */
  limited(kind: LimitKind): void {
    this.#counted = true;
    this.#limited[kind].inc();
  }

  /** Publishes every `intervalMs`; with `idle` false, only once something was counted (the lease desk's pools: nothing for a pool no task went through). */
  start(intervalMs: number, idle = true): void {
    const publish = () => void ((idle || this.#counted) && this.publish(3 * intervalMs).catch(() => undefined));
    this.#timer = setInterval(publish, intervalMs);
    this.#timer.unref();
    publish();
  }

  /** Writes this agent's counts where fleet-metrics.ts reads them, for `ttlMs`. */
  async publish(ttlMs: number): Promise<void> {
    const json = JSON.stringify(await this.registry.getMetricsAsJSON());
    const k = keys(this.prefix);
    if (this.unlisted) await this.redis.multi().set(k.agentMetrics(this.agentId), json, 'PX', ttlMs).sadd(k.otherMetrics, this.agentId).exec();
    else await this.redis.set(k.agentMetrics(this.agentId), json, 'PX', ttlMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.redis.del(keys(this.prefix).agentMetrics(this.agentId)).catch(() => undefined);
  }
}
