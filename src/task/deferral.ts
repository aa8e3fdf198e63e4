/**
 * Putting a fetched task off without it counting: back to BullMQ's delayed set until `untilMs`, its
 * attempt unspent and not counted as started (fetching it counted one in attemptsStarted). For a task
 * an agent took but may not start yet: its key at its limit (key-slots.ts) or out of its rate.
 */
import { DelayedError, type Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';

export async function defer(job: Job, token: string | undefined, untilMs: number, redis: RedisConnection): Promise<void> {
  await job.moveToDelayed(untilMs, token);
  await redis.hincrby(`${job.queueQualifiedName}:${job.id}`, 'ats', -1);
}

/** What a processor throws after defer(): BullMQ leaves the job where it was put. */
export const deferred = (why: string): DelayedError => new DelayedError(why);
