/**
 * When a failed attempt runs again. Pure: policies and delays here, the BullMQ hook in
 * task/backoff-strategy.ts. Imports errors only.
 *
 * Delays: exponential `delayMs × factor^(attempt-1)`, linear `delayMs × attempt`, or fixed; spread
 * by ±jitter, and only then capped, so no delay ever exceeds maxDelayMs.
 */
import { z } from 'zod';

export const backoffSchema = z
  .strictObject({
    type: z.enum(['exponential', 'linear', 'fixed']).default('exponential'),
    /** First retry's delay (the base of the exponential and linear forms). */
    delayMs: z.number().int().min(0).max(86_400_000).default(1000),
    /** Growth per attempt, exponential only. */
    factor: z.number().min(1).max(100).default(2),
    /** No delay exceeds this, jitter included. */
    maxDelayMs: z.number().int().min(0).max(7 * 86_400_000).default(3_600_000),
    /** Random spread, 0..1: 0.2 = each delay lands in ±20 % of its nominal value (then capped). */
    jitter: z.number().min(0).max(1).default(0.2),
  })
  .refine((b) => b.maxDelayMs >= b.delayMs, { path: ['maxDelayMs'], message: 'must be at least delayMs' });

export type Backoff = z.output<typeof backoffSchema>;
export type BackoffInput = z.input<typeof backoffSchema>;
export const DEFAULT_BACKOFF: Backoff = Object.freeze(backoffSchema.parse({}));

/** Nominal delay before retry number `attempt` (1 = the first retry), without jitter or cap. */
export function nominalDelay(b: Backoff, attempt: number): number {
  switch (b.type) {
    case 'exponential':
      return b.delayMs * b.factor ** (attempt - 1);
    case 'linear':
      return b.delayMs * attempt;
    case 'fixed':
      return b.delayMs;
  }
}

/** The delay to wait before retry number `attempt`: jittered, then capped. */
export function retryDelay(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const jittered = nominalDelay(b, attempt) * (1 + b.jitter * (2 * random() - 1));
  return Math.round(Math.max(0, Math.min(jittered, b.maxDelayMs)));
}
