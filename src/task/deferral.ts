/**
 * Putting a fetched task off without it counting: back to BullMQ's delayed set until `untilMs`, its
 * attempt unspent and not counted as started (fetching it counted one in attemptsStarted). For a task
 * an agent took but may not start yet: its key at its limit (key-slots.ts) or out of its rate.
 */
import { DelayedError, type Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';

export function defer(job: Job, token: string | undefined, untilMs: number, redis: RedisConnection): Promise<void> {
  return unspent(job, redis, () => job.moveToDelayed(untilMs, token));
}

/** Back to waiting (at the head of its queue), its attempt not counted as started: a task fetched ahead and not run. */
export function giveBack(job: Job, token: string, redis: RedisConnection): Promise<void> {
  return unspent(job, redis, () => job.moveToWait(token).then(() => undefined));
}

async function unspent(job: Job, redis: RedisConnection, move: () => Promise<void>): Promise<void> {
  // Uncounted first, so whoever sees it moved also sees the attempt not started (a reader between the two
  // sees it active and not started: it is not running its handler yet). Increments commute, so giving the
  // count back when the move fails (its lock lost) leaves it right whoever fetched it meanwhile.
  const key = `${job.queueQualifiedName}:${job.id}`;
  await redis.hincrby(key, 'ats', -1);
  try {
    await move();
  } catch (error) {
    await redis.hincrby(key, 'ats', 1);
    throw error;
  }
}

/** What a processor throws after defer(): BullMQ leaves the job where it was put. */
export const deferred = (why: string): DelayedError => new DelayedError(why);
