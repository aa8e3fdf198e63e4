/**
 * src/breaker/: circuit breakers shared by every process through Redis. One per pool
 * (`pool:<type>.<pool>`), plus any a handler names (`ctx.breaker("smtp")`). Imports redis/ and
 * errors only.
 *
 * This file: when a breaker trips and for how long, with the seed's presets.
 */
import { z } from 'zod';

export const breakerPolicySchema = z.strictObject({
  /** Trip when failures / outcomes in the window reach this (>=). */
  failureRatio: z.number().gt(0).max(1),
  /** Never trip on fewer outcomes than this in the window. */
  minRequests: z.number().int().min(1),
  /** Rolling window the ratio is computed over; older outcomes age out. */
  windowMs: z.number().int().min(100),
  /** How long the breaker stays OPEN before it lets probes through (HALF_OPEN). */
  openMs: z.number().int().min(10),
  /** Probes admitted at once across all processes while HALF_OPEN; that many successes close it. */
  halfOpenProbes: z.number().int().min(1).max(100),
});

export type BreakerPolicy = z.output<typeof breakerPolicySchema>;

export const BREAKER_PRESETS = {
  /** Trips early: 30 % failures over at least 3 outcomes; retries after 10 s. */
  critical: { failureRatio: 0.3, minRequests: 3, windowMs: 30_000, openMs: 10_000, halfOpenProbes: 1 },
  /** Tolerant: 70 % failures over at least 10 outcomes; retries after 60 s. */
  batch: { failureRatio: 0.7, minRequests: 10, windowMs: 120_000, openMs: 60_000, halfOpenProbes: 2 },
} as const satisfies Record<string, BreakerPolicy>;

export type BreakerPreset = keyof typeof BREAKER_PRESETS;
export const breakerSettingSchema = z.union([z.enum(['critical', 'batch']), breakerPolicySchema]);
export type BreakerSetting = z.input<typeof breakerSettingSchema>;

export function resolveBreakerPolicy(setting: BreakerSetting): BreakerPolicy {
  return typeof setting === 'string' ? BREAKER_PRESETS[setting] : setting;
}
