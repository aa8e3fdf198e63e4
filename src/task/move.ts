/**
 * Moves a task to another pool queue under the same id: add to the new queue first, then remove
 * from the old one, so a crash in between leaves two copies, never none (at-least-once). Used by
 * the dispatcher (parked and stranded tasks) and by dead-letter replay.
 */
import type { Job, JobsOptions } from 'bullmq';
import type { PoolRef } from '../model/names.ts';
import type { RoutingDecision } from '../model/routing.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { PoolQueues } from './pool-queues.ts';

export interface MoveOptions {
  /** Replace the data (default: the same envelope with the new routing). */
  data?: TaskEnvelope;
  /** Start over with the full attempt budget even though the old job spent some (replays). */
  now?: number;
}

/**
 * Returns false when the old copy could not be removed because an agent took it meanwhile: the new copy
 * is then taken back, so the task runs in one pool (its old one, whose agent may also hand it back: the
 * breaker gate does, and then the next move takes it). Only a crash between the add and the take-back,
 * or an agent of the new pool starting the copy within that moment, leaves two copies that both run.
 */
export async function moveTask(queues: PoolQueues, job: Job<TaskEnvelope>, to: PoolRef, routing: RoutingDecision, o: MoveOptions = {}): Promise<boolean> {
  const now = o.now ?? Date.now();
  const target = await queues.forWriting(to);
  const remaining = job.delay && job.finishedOn === undefined ? Math.max(0, job.timestamp + job.delay - now) : 0;
  const opts: JobsOptions = {
    jobId: job.id!,
    attempts: job.opts.attempts,
    backoff: job.opts.backoff,
    removeOnComplete: job.opts.removeOnComplete,
    removeOnFail: job.opts.removeOnFail,
    ...(job.opts.priority ? { priority: job.opts.priority } : {}),
    ...(remaining > 0 ? { delay: remaining } : {}),
  };
  await target.add(job.name, { ...(o.data ?? job.data), routing }, opts);
  try {
    await job.remove();
    return true;
  } catch {
    await target.remove(job.id!).catch(() => 0);
    return false;
  }
}
