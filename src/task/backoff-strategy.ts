/**
 * The backoff strategy agents give BullMQ: every task's jobs carry `backoff: {type: 'switchyard'}`
 * and their resolved policy in the envelope, so the delay is computed here, per task, with our
 * rules (jitter before the cap, RetryAfterError honoured).
 */
import type { MinimalJob } from 'bullmq';
import { retryAfterMs } from '../model/errors.ts';
import { DEFAULT_BACKOFF, retryDelay, type Backoff } from '../model/backoff.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';

export const BACKOFF_TYPE = 'switchyard';

/** The strategy for one agent type: a task's own policy if it has one, else the type's. */
export function backoffStrategy(typeDefault: Backoff = DEFAULT_BACKOFF) {
  return (attemptsMade: number, _type: string | undefined, err: Error | undefined, job: MinimalJob | undefined): number => {
    const asked = retryAfterMs(err);
    if (asked !== undefined) return asked;
    const policy = (job?.data as Partial<TaskEnvelope> | undefined)?.backoff ?? typeDefault;
    return retryDelay(policy, attemptsMade);
  };
}
