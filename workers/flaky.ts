import { setTimeout as sleep } from 'node:timers/promises';
import { defineWorker, FatalError } from '../src/index.ts';
import { flaky } from '../queues/flaky.ts';

/** When set, the agent's health check probes this URL: any non-2xx answer is a failed check. */
const downstream = process.env.FLAKY_HEALTH_URL;
/** When set, every task calls this downstream first and fails when it answers non-2xx. */
const dependency = process.env.FLAKY_DOWNSTREAM_URL;
/** Extra latency this agent adds to every task: a slow host, for routing demos and benchmarks. */
const slowdownMs = Number(process.env.FLAKY_SLOWDOWN_MS ?? 0);

export default defineWorker(
  flaky,
  async (p, ctx) => {
    const started = Date.now();
    const delay = p.latencyMs + slowdownMs + (p.jitterMs ? Math.round((Math.random() * 2 - 1) * p.jitterMs) : 0);
    if (delay > 0) await sleep(Math.max(0, delay), undefined, { signal: ctx.signal });
    if (dependency) {
      const res = await fetch(dependency, { signal: ctx.signal });
      if (!res.ok) throw new Error(`downstream ${dependency} answered ${res.status}`);
    }
    const fail = ctx.attempt <= p.failUntilAttempt || (p.failRate > 0 && Math.random() < p.failRate);
    if (fail) {
      const msg = `flaky failure on attempt ${ctx.attempt}`;
      throw p.fatal ? new FatalError(msg) : new Error(msg);
    }
    return { ok: true as const, attempt: ctx.attempt, tookMs: Date.now() - started };
  },
  downstream
    ? {
        healthCheck: async (signal) => {
          const res = await fetch(downstream, { signal });
          if (!res.ok) throw new Error(`downstream ${downstream} answered ${res.status}`);
        },
      }
    : {},
);
