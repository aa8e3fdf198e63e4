import { z } from 'zod';
import { BREAKER_PRESETS, defineAgentType } from '../src/index.ts';

/**
 * A downstream that misbehaves on request: it fails with probability `failRate`, takes
 * `latencyMs` (± `jitterMs`), and can fail fatally. Tests and benchmarks drive faults through it.
 */
export const flaky = defineAgentType({
  name: 'flaky',
  version: '1.0.0',
  description: 'Fails with probability failRate after latencyMs; fatal makes the failure non-retryable.',
  payload: z.object({
    failRate: z.number().min(0).max(1).default(0),
    latencyMs: z.number().int().min(0).max(600_000).default(0),
    jitterMs: z.number().int().min(0).max(60_000).default(0),
    fatal: z.boolean().default(false),
    /** Kill the agent process (SIGKILL) on every run: a poison pill, for the fault tests. */
    crash: z.boolean().default(false),
    /** On the task's first run only, busy-wait this long first, blocking the agent's event loop (lost-lock tests). */
    blockFirstRunMs: z.number().int().min(0).max(600_000).default(0),
    /** Fail only on attempts up to this number, then succeed (deterministic retries). */
    failUntilAttempt: z.number().int().min(0).max(100).default(0),
    /** Report progress (ctx.progress, a percentage) after each of this many equal parts of latencyMs. */
    progressSteps: z.number().int().min(0).max(100).default(0),
  }),
  result: z.object({ ok: z.literal(true), attempt: z.number().int(), tookMs: z.number() }),
  defaults: { attempts: 3, timeoutMs: 60_000, backoff: { type: 'exponential', delayMs: 200, jitter: 0.2 } },
  // Trips early (the seed's `critical` preset: 30 % of at least 3 calls); FLAKY_BREAKER_PRESET=batch
  // suits workloads that fail at random on purpose (benchmarks); FLAKY_BREAKER_OPEN_MS shortens the open time.
  breaker: (() => {
    const preset = BREAKER_PRESETS[process.env.FLAKY_BREAKER_PRESET === 'batch' ? 'batch' : 'critical'];
    return { ...preset, openMs: Number(process.env.FLAKY_BREAKER_OPEN_MS ?? preset.openMs) };
  })(),
  strategy: 'weighted',
});
