/**
 * A task's progress: what its handler last reported with `ctx.progress()` (BullMQ keeps it on the job):
 * a number (a percentage, by convention) or any JSON object or array. Shown by GET /v1/tasks/:id and
 * carried by `progress` events.
 */
import { z } from 'zod';

export type TaskProgress = number | Record<string, unknown> | unknown[];

export const taskProgressSchema = z
  .union([z.number(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
  .describe('what the handler last reported with ctx.progress(): a number (a percentage by convention) or JSON; absent until it reports one other than 0');

/** The progress a job holds, or undefined when its handler reported none (BullMQ's default is 0). */
export function progressOf(value: unknown): TaskProgress | undefined {
  if (typeof value === 'number') return value === 0 || !Number.isFinite(value) ? undefined : value;
  return typeof value === 'object' && value !== null ? (value as TaskProgress) : undefined;
}
