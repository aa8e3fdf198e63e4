/** How an agent judges its own health; defaults here, overridable per worker and by env. */
import { z } from 'zod';

export const healthPolicySchema = z.object({
  /** Time between checks. */
  intervalMs: z.number().int().min(10).default(1000),
  /** A check still running after this long counts as failed, with "timeout" in its error. */
  checkTimeoutMs: z.number().int().min(1).default(2000),
  /** A passing check slower than this makes the agent DEGRADED. */
  degradedMs: z.number().int().min(1).default(500),
  /** Consecutive failed checks before the agent is UNHEALTHY; one success resets the count. */
  unhealthyAfter: z.number().int().min(1).max(100).default(3),
  /** Smoothing of the response-time average: ema = a * latest + (1 - a) * ema. */
  emaAlpha: z.number().gt(0).max(1).default(0.3),
});

export type HealthPolicy = z.output<typeof healthPolicySchema>;
export const DEFAULT_HEALTH_POLICY: HealthPolicy = Object.freeze(healthPolicySchema.parse({}));
