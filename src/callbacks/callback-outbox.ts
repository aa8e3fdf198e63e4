/**
 * Callbacks to deliver: one BullMQ job per task or run that ended with a callback, in the queue
 * `{callbacks}`, added by whoever ends it (the agent before it completes or fails the task, the API for
 * a task cancelled before it ran, the engine for a run). The job id names the task or run and its
 * final state, so adding it twice (a task run again after its agent died) is a no-op. Delivered by
 * callback-sender.ts, retried with backoff for over two hours, then kept in the queue's failed set
 * (the dead letters of callbacks: Bull Board shows them and can retry them).
 */
import { Queue } from 'bullmq';
import { CALLBACK_QUEUE } from '../model/names.ts';
import type { RedisConnection } from '../redis/connection.ts';

/** What to deliver: the final view of task or run `id` (read when first sent), to `url`. */
export interface CallbackJob {
  kind: 'task' | 'run';
  id: string;
  state: string;
  url: string;
  /** The body, once built (every retry sends the same bytes). */
  body?: string;
}

/** Attempts and backoff: 1 s doubling, 13 attempts: the last about 2 h 15 min after the first. */
export const CALLBACK_ATTEMPTS = 13;
export const CALLBACK_BACKOFF_MS = 1000;

export class CallbackOutbox {
  readonly queue: Queue<CallbackJob>;

  constructor(redis: RedisConnection, prefix: string) {
    this.queue = new Queue<CallbackJob>(CALLBACK_QUEUE, { connection: redis, prefix });
    this.queue.on('error', () => undefined);
  }

  /** Adds a delivery (a repeated one, same task or run and state, is a no-op). */
  async add(c: Omit<CallbackJob, 'body'>): Promise<void> {
    await this.queue.add(c.kind, c, {
      jobId: `cb~${c.kind}~${c.id}~${c.state}`,
      attempts: CALLBACK_ATTEMPTS,
      backoff: { type: 'exponential', delay: CALLBACK_BACKOFF_MS, jitter: 0.2 },
      removeOnComplete: { age: 3600 },
    });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
