/**
 * Dead letters: tasks out of attempts (or failed fatally) stay in their pool queue's failed set
 * with their error history. They can be listed, filtered, and replayed: routed again (their pool
 * may be gone) with a fresh attempt budget, keeping the errors of earlier lives. A task aborted on
 * request (DELETE while it ran) ends in the same BullMQ set, but it is `cancelled`, not dead: an
 * operator stopped it on purpose, so it is neither listed nor replayable here.
 */
import type { Job } from 'bullmq';
import { z } from 'zod';
import type { Catalogue } from '../model/catalogue.ts';
import { SwitchyardError } from '../model/errors.ts';
import { queryInteger } from '../model/validation.ts';
import { NAME_PATTERN, PARKED_POOL, parseQueueName } from '../model/names.ts';
import type { Router } from '../model/routing.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { parseNodeJobId, typeOfTaskId } from '../model/task-id.ts';
import { moveTask } from './move.ts';
import type { PoolQueues } from './pool-queues.ts';
import { taskState, viewOf, type TaskView } from './view.ts';

const filterShape = {
  type: z.string().regex(NAME_PATTERN, 'an agent type name').optional(),
  pool: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a pool name').optional(),
  /** Case-insensitive text the last error contains. */
  error: z.string().min(1).max(200).optional(),
  /** Died at or after / before (ISO 8601). */
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
};
const limit = z.number().int().min(1).max(1000);

/** The body of POST /v1/dlq/replay: JSON, so `limit` is a number (not `"5"`, not `[5]`). */
export const deadLetterFilterSchema = z.strictObject({ ...filterShape, limit: limit.default(100) });

/**
 * The query of GET /v1/dlq: the same filter, `limit` written in decimal digits (the document calls it
 * an integer; `0x10`, `1e2` or ` 5` are not one, though Number() would take them).
 */
export const deadLetterQuerySchema = z.strictObject({
  ...filterShape,
  limit: queryInteger(limit).default(100),
});

export type DeadLetterFilter = z.output<typeof deadLetterFilterSchema>;

/** A job of BullMQ's failed set that is dead (out of attempts, or fatal), not cancelled on request. */
const isDead = (job: Job<TaskEnvelope>): boolean => taskState(job, 'failed') === 'dead';

/** How many dead tasks per pool queue a listing reads at most. */
const SCAN_PER_QUEUE = 5000;

export class DeadLetters {
  constructor(
    private readonly queues: PoolQueues,
    private readonly catalogue: Catalogue,
    private readonly router: Router,
  ) {}

  /** Dead tasks matching the filter, most recent first. */
  async list(f: DeadLetterFilter): Promise<TaskView[]> {
    await this.queues.refresh();
    const since = f.since ? Date.parse(f.since) : -Infinity;
    const until = f.until ? Date.parse(f.until) : Infinity;
    const needle = f.error?.toLowerCase();
    const pools = this.queues.all().filter(({ ref }) => ref.pool !== PARKED_POOL && (!f.type || ref.type === f.type) && (!f.pool || ref.pool === f.pool));
    const found = await Promise.all(
      pools.map(async ({ queue }) => {
        const jobs = (await queue.getJobs(['failed'], 0, SCAN_PER_QUEUE - 1, false)) as Job<TaskEnvelope>[];
        return jobs.filter((j) => {
          const at = j.finishedOn ?? 0;
          return isDead(j) && at >= since && at < until && (!needle || (j.failedReason ?? '').toLowerCase().includes(needle));
        });
      }),
    );
    return found
      .flat()
      .sort((a, b) => (b.finishedOn ?? 0) - (a.finishedOn ?? 0))
      .slice(0, f.limit)
      .map((j) => viewOf(j, 'dead'));
  }

  /** Replays one dead task; throws TASK_NOT_FOUND / NOT_DEAD when it cannot. */
  async replay(id: string): Promise<TaskView> {
    if (parseNodeJobId(id)) {
      throw new SwitchyardError('WORKFLOW_NODE', `task ${id} is a workflow node: its run has stopped and compensated what it had done; start a new run instead of replaying the node`);
    }
    const job = await this.#find(id);
    if (!job) throw new SwitchyardError('TASK_NOT_FOUND', `no task with id ${JSON.stringify(id)}`);
    if ((await job.getState()) !== 'failed') {
      throw new SwitchyardError('TASK_NOT_DEAD', `task ${id} is not dead (only dead tasks can be replayed); GET /v1/tasks/${id} shows its state`);
    }
    if (!isDead(job)) {
      throw new SwitchyardError('TASK_NOT_DEAD', `task ${id} was cancelled, not dead: only dead tasks can be replayed; enqueue it again (POST /v1/tasks) to run it`);
    }
    return this.#replay(job);
  }

  /** Replays every dead task matching the filter (at most `limit`); returns their new views. */
  async replayMatching(f: DeadLetterFilter): Promise<TaskView[]> {
    const dead = await this.list(f);
    const replayed: TaskView[] = [];
    for (const view of dead) {
      const job = await this.#find(view.id);
      if (job && isDead(job) && (await job.getState()) === 'failed') replayed.push(await this.#replay(job));
    }
    return replayed;
  }

  async #replay(job: Job<TaskEnvelope>): Promise<TaskView> {
    const ref = parseQueueName(job.queueName)!;
    const r = job.data.route ?? {};
    const routing = this.router.route({ type: ref.type, pool: r.pool, strategy: r.strategy, version: r.version, tags: job.data.tags });
    const lives = [...(job.data.previousErrors ?? []), ...(job.stacktrace ?? []).map((s) => s.split('\n', 1)[0] ?? s)];
    const decision = { ...routing, reason: `replayed from the dead letters: ${routing.reason}` };
    const data: TaskEnvelope = { ...job.data, routing: decision, previousErrors: lives };
    if (routing.pool === ref.pool) {
      // Same queue: BullMQ's retry keeps the job's stack traces, which are now in previousErrors.
      await job.updateData(data);
      await this.queues.redis.hset(this.queues.jobKey(ref, job.id!), 'stacktrace', '[]');
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } else {
      await moveTask(this.queues, job, { type: ref.type, pool: routing.pool }, decision, { data });
    }
    const fresh = await this.queues.get({ type: ref.type, pool: routing.pool }).getJob(job.id!);
    const state = fresh ? taskState(fresh as Job<TaskEnvelope>, await fresh.getState()) : undefined;
    return fresh && state ? viewOf(fresh as Job<TaskEnvelope>, state) : viewOf(job, 'waiting');
  }

  async #find(id: string): Promise<Job<TaskEnvelope> | undefined> {
    const type = typeOfTaskId(id);
    if (!type || !this.catalogue.find(type)) return undefined;
    await this.queues.refresh();
    const jobs = await Promise.all(this.queues.ofType(type).map((q) => q.getJob(id) as Promise<Job<TaskEnvelope> | undefined>));
    return jobs.find((j) => j?.finishedOn !== undefined) ?? jobs.find((j) => j !== undefined);
  }
}
