/**
 * A BullMQ Worker that fetches and completes in batches: its main loop, processors, events, lock
 * renewal and stalled checks are BullMQ's own; only where a job comes from and how a completion is
 * written change (src/task/job-batch.ts).
 *
 * - **Fetch:** one call takes up to `prefetch` ready jobs, each locked with its own token, into a
 *   local queue; the loop's fetches are served from it, and it is filled again, in the background,
 *   once it is down to half. A buffered job's lock is renewed like a running job's (BullMQ's lock
 *   manager tracks it from the fetch), so the stalled check leaves it alone; if the process dies, the
 *   locks lapse and the stalled check puts every buffered job back. That check counts a stall against
 *   each (stc, which Switchyard counts against a task's attempts), so each job records its place in
 *   the local queue, and the worker marks in Redis how far its handlers have got (`beforeHandler`:
 *   one SET before the handlers that start together run): a job whose place was never reached gets
 *   that stall back when it is taken again (job-batch-take.lua). A task is charged a stall only if
 *   its handler was about to run.
 * - **Completion:** results are committed by group commit (a few calls in flight; whatever finished
 *   meanwhile is the next batch), each refused, with BullMQ's error, when its lock was lost.
 *   Failures, retries and BullMQ's rate-limit, delayed and waiting errors take BullMQ's own path.
 * - **Pause and close:** buffered jobs go back to waiting at once, their attempt not counted as
 *   started (`ats` given back, as src/task/deferral.ts does).
 *
 * Not for queues with flows, deduplication or a worker-level `limiter` (a queue-level rate limit
 * is honoured: one job per fetch).
 */
import { Worker, type Job, type Processor, type WorkerOptions } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import { giveBack } from '../task/deferral.ts';
import { COMMITTED, CompletionBatcher, commitCompletion, completeJobs, START_MARK_MS, startMarkKey, takeJobs, type TakenJob } from '../task/job-batch.ts';

export interface BatchOptions {
  /** Commands connection for the batch scripts (the worker's own `connection`). */
  redis: RedisConnection;
  /** Jobs held fetched ahead of the handlers (default: the concurrency); 0 turns batching off. */
  prefetch?: number;
  /** Most completions per call (default 256). */
  commitMax?: number;
}

/** The parts of BullMQ's Worker this class relies on beyond its protected API (tests/unit/bullmq-pin.test.ts checks them). */
interface WorkerInternals {
  updateDelays(limitDelay?: number, delayUntil?: number): void;
}

export class BatchedWorker<D = unknown, R = unknown> extends Worker<D, R> {
  readonly #redis: RedisConnection;
  readonly #prefetch: number;
  readonly #buffer: TakenJob[] = [];
  readonly #batcher: CompletionBatcher;
  #filling: Promise<number> | undefined;
  /** Jobs in the local queue go back and none are taken (paused, closing). */
  #holding = false;
  /** The last fill found fewer jobs than it asked for: no background fills until the loop asks again. */
  #dry = false;
  #tokens = 0;
  /** Jobs being processed (handler, then commit). */
  #processing = 0;
  #idle: Array<() => void> = [];
  /** The place the next job taken into the local queue gets. */
  #place = 0;
  /** Places of jobs handed to the loop whose handlers have not been called yet, by job id. */
  readonly #popped = new Map<string, number>();
  /** The start mark written last: places below it were handed to a handler. */
  #marked = 0;
  /** The mark the handlers waiting for the next write need, and that write (once per turn of the event loop). */
  #pendingMark = 0;
  #markWrite: Promise<void> | undefined;

  constructor(name: string, processor: Processor<D, R>, opts: WorkerOptions, batch: BatchOptions) {
    super(name, processor, opts);
    this.#redis = batch.redis;
    this.#prefetch = Math.max(0, batch.prefetch ?? opts.concurrency ?? 1);
    const lockMs = opts.lockDuration ?? 30_000;
    const metricsMax = opts.metrics?.maxDataPoints;
    this.#batcher = new CompletionBatcher((entries) => completeJobs(this.#redis, this.keys, entries, { lockMs, metricsMax }), batch.commitMax);
  }

  /** Jobs fetched and not yet handed to a handler. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** True when the job is in the local queue (fetched, locked, not started). */
  holds(jobId: string): boolean {
    return this.#buffer.some((b) => b.id === jobId);
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job<D, R>> {
    if (this.#prefetch === 0 || this.opts.limiter) return super.moveToActive(token, name);
    // Paused or closing: nothing is taken (BullMQ's own fetch answers the same while paused), after a
    // turn of the event loop, so a loop that asks again at once cannot starve I/O.
    if (this.#holding) {
      await new Promise((r) => setImmediate(r));
      return undefined as unknown as Job<D, R>;
    }
    const next = await this.#take();
    if (!next) return this.nextJobFromJobData(undefined, undefined, token);
    (this as unknown as WorkerInternals).updateDelays(0, 0);
    return this.nextJobFromJobData(next.json, next.id, next.token);
  }

  /** The next job of the local queue, filling it when empty; filled again in the background once down to half. */
  async #take(): Promise<TakenJob | undefined> {
    // Two rounds: jobs a fill brings may all be taken by the loop's other fetches before this one resumes.
    for (let round = 0; round < 2 && !this.#holding; round++) {
      const next = this.#buffer.shift();
      if (next) {
        if (next.place !== undefined) this.#popped.set(next.id, next.place);
        if (!this.#dry && this.#buffer.length <= this.#prefetch / 2) void this.#fill().catch((err: unknown) => this.emit('error', err as Error));
        return next;
      }
      if ((await this.#fill()) === 0 && this.#buffer.length === 0) return undefined;
    }
    return undefined;
  }

  /** Fills the local queue up to `prefetch` in one call (joins the call in flight); resolves with how many came. */
  #fill(): Promise<number> {
    this.#filling ??= (async () => {
      try {
        const want = this.#prefetch - this.#buffer.length;
        if (want <= 0 || this.#holding) return 0;
        const tokens = Array.from({ length: want }, () => `${this.id}:b${this.#tokens++}`);
        // Places are given out before the call: if its reply is lost, none is used twice (gaps are harmless).
        const localQueue = { owner: this.id, firstPlace: this.#place };
        this.#place += want;
        const taken = await takeJobs(this.#redis, this.keys, tokens, { lockMs: this.opts.lockDuration ?? 30_000, workerName: this.opts.name, localQueue });
        this.#dry = taken.jobs.length < want;
        const now = Date.now();
        for (const job of taken.jobs) this.lockManager.trackJob(job.id, job.token, now);
        this.#buffer.push(...taken.jobs);
        if (taken.jobs.length === 0) (this as unknown as WorkerInternals).updateDelays(taken.limitMs, taken.nextDelayedAt);
        if (this.#holding) await this.#handBack();
        return taken.jobs.length;
      } finally {
        this.#filling = undefined;
      }
    })();
    return this.#filling;
  }

  /**
   * The handler of this job is about to be called: it waits until the start mark covers its place.
   * Handlers starting together share one mark write (issued, not awaited: the command is on its way
   * before they run), so a crash in one of them charges the others their stall too, as BullMQ charges
   * every job moved to a worker that dies. A job that already stalled (it was there when a worker
   * died, perhaps because of it) runs alone: after the jobs placed before it reached their handlers,
   * under a mark of its own, so a repeat crash is charged to it and to what had really started.
   * Marks only go up, on one connection, so Redis sees them in order.
   */
  beforeHandler(job: Job<D, R>): Promise<void> | undefined {
    const id = job.id ?? '';
    const place = this.#popped.get(id);
    if (place === undefined) return undefined;
    this.#popped.delete(id);
    if (place < this.#marked) return undefined;
    if (job.stalledCounter > 0) return this.#alone(place);
    this.#pendingMark = Math.max(this.#pendingMark, place + 1);
    this.#markWrite ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.#markWrite = undefined;
        this.#mark(this.#pendingMark);
        resolve();
      }),
    );
    return this.#markWrite;
  }

  async #alone(place: number): Promise<void> {
    await this.#markWrite;
    await new Promise((r) => setImmediate(r));
    this.#mark(place + 1);
  }

  #mark(value: number): void {
    if (value <= this.#marked) return;
    this.#marked = value;
    this.#redis.set(startMarkKey(this.keys, this.id), value, 'PX', START_MARK_MS).catch((err: unknown) => this.emit('error', err as Error));
  }

  protected override async handleCompleted(result: R, job: Job<D, R>, token: string, fetchNextCallback = () => true): Promise<Job<D, R>> {
    if (this.#prefetch === 0 || job.parentKey || job.deduplicationId) return super.handleCompleted(result, job, token, fetchNextCallback);
    const code = await commitCompletion(this.#batcher, job, token, result, this.opts.removeOnComplete);
    if (code !== COMMITTED) throw this.backend.finishedErrors({ code, jobId: job.id, command: 'moveToFinished', state: 'active' });
    this.emit('completed', job, result, 'active');
    if (fetchNextCallback() && !(this.closing || this.isPaused())) return this.moveToActive(token, this.opts.name);
    return undefined as unknown as Job<D, R>;
  }

  /** Gives the local queue back to waiting: each job's lock released, its attempt not counted as started. */
  async #handBack(): Promise<void> {
    const jobs = this.#buffer.splice(0);
    await Promise.all(
      jobs.map(async (b) => {
        this.lockManager.untrackJob(b.id);
        await giveBack(this.createJob(b.json, b.id), b.token, this.#redis).catch((err: unknown) => this.emit('error', err as Error));
      }),
    );
  }

  /** BullMQ's pause is started first: it marks the worker paused at once, so its loop fetches nothing while the local queue goes back. */
  override async pause(doNotWaitActive?: boolean): Promise<void> {
    this.#holding = true;
    const pausing = super.pause(doNotWaitActive);
    await this.#filling?.catch(() => 0);
    await this.#handBack();
    await pausing;
  }

  override resume(): Promise<void> {
    this.#holding = false;
    return super.resume();
  }

  override async processJob(job: Job<D, R>, token: string, fetchNextCallback?: () => boolean): Promise<void | Job<D, R>> {
    this.#processing++;
    try {
      return await super.processJob(job, token, fetchNextCallback);
    } finally {
      if (job.id) this.#popped.delete(job.id);
      if (--this.#processing === 0) for (const r of this.#idle.splice(0)) r();
    }
  }

  /**
   * Hands the local queue back, then closes. A paused worker waits for its jobs here and closes with
   * `force`: BullMQ's own wait disconnects the blocking connection again and waits for its 'end', which
   * on a Redis Cluster never comes after a pause did the same (bullmq #4065), so close() would hang.
   */
  override async close(force?: boolean): Promise<void> {
    this.#holding = true;
    if (!force && this.isPaused()) {
      await this.#filling?.catch(() => 0);
      await this.#handBack().catch((err: unknown) => this.emit('error', err as Error));
      if (this.#processing > 0) await new Promise<void>((r) => this.#idle.push(r));
      await super.close(true);
    } else {
      // BullMQ's close is started first: it marks the worker closing at once, so its loop fetches nothing more.
      const closing = super.close(force);
      await this.#filling?.catch(() => 0);
      await this.#handBack().catch((err: unknown) => this.emit('error', err as Error));
      await closing;
    }
    await this.#batcher.flush();
    // Nothing of this worker is left waiting in active (a forced close's running jobs are charged their stall either way).
    await this.#redis.del(startMarkKey(this.keys, this.id)).catch(() => 0);
  }

}
