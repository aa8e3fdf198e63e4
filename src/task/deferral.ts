/**
 * Putting a fetched task off without it counting: back to BullMQ's delayed set until `untilMs`, its
 * attempt unspent and not counted as started (fetching it counted one in attemptsStarted). For a task
 * an agent took but may not start yet: its key at its limit (key-slots.ts) or out of its rate.
 */
import { DelayedError, type Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';

export async function defer(job: Job, token: string | undefined, untilMs: number, redis: RedisConnection): Promise<void> {
  // Uncounted first, so whoever sees it delayed also sees the attempt not started (a reader between the two
  // sees it active and not started: it is not running its handler yet). Increments commute, so giving the
  // count back when the move fails (its lock lost) leaves it right whoever fetched it meanwhile.
  const key = `${job.queueQualifiedName}:${job.id}`;
  await redis.hincrby(key, 'ats', -1);
  try {
    await job.moveToDelayed(untilMs, token);
  } catch (error) {
    await redis.hincrby(key, 'ats', 1);
    throw error;
  }
}

/** What a processor throws after defer(): BullMQ leaves the job where it was put. */
export const deferred = (why: string): DelayedError => new DelayedError(why);
