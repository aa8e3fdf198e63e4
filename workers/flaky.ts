import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineWorker, FatalError } from '../src/index.ts';
import { flaky } from '../queues/flaky.ts';

/** When set, the agent's health check probes this URL: any non-2xx answer is a failed check. */
const downstream = process.env.FLAKY_HEALTH_URL;
/** When set, every task calls this downstream first and fails when it answers non-2xx. */
const dependency = process.env.FLAKY_DOWNSTREAM_URL;
/** Extra latency this agent adds to every task: a slow host, for routing demos and benchmarks. */
const slowdownMs = Number(process.env.FLAKY_SLOWDOWN_MS ?? 0);
/**
 * When set, every execution is written to this append-only file (a ledger outside Redis, for the
 * fault tests): one JSON line when it starts and one when it ends.
 */
const ledger = process.env.FLAKY_LEDGER;
const record = (id: string, attempt: number, ev: 'start' | 'end') => {
  if (ledger) appendFileSync(ledger, `${JSON.stringify({ id, attempt, pid: process.pid, ev, t: Date.now() })}\n`);
};

export default defineWorker(
  flaky,
  async (p, ctx) => {
    const started = Date.now();
    record(ctx.taskId, ctx.attempt, 'start');
    if (p.crash) process.kill(process.pid, 'SIGKILL');
    if (p.blockFirstRunMs > 0 && ctx.runs === 1) {
      const until = Date.now() + p.blockFirstRunMs;
      while (Date.now() < until) {
        // blocking on purpose: no timer, heartbeat or lock renewal runs meanwhile
      }
    }
    const delay = p.latencyMs + slowdownMs + (p.jitterMs ? Math.round((Math.random() * 2 - 1) * p.jitterMs) : 0);
    if (p.progressSteps > 0) {
      for (let step = 1; step <= p.progressSteps; step++) {
        await sleep(Math.max(0, delay) / p.progressSteps, undefined, { signal: ctx.signal });
        await ctx.progress(Math.round((100 * step) / p.progressSteps));
      }
    } else if (delay > 0) await sleep(Math.max(0, delay), undefined, { signal: ctx.signal });
    if (dependency) {
      const res = await fetch(dependency, { signal: ctx.signal });
      if (!res.ok) throw new Error(`downstream ${dependency} answered ${res.status}`);
    }
    const fail = ctx.attempt <= p.failUntilAttempt || (p.failRate > 0 && Math.random() < p.failRate);
    if (fail) {
      const msg = `flaky failure on attempt ${ctx.attempt}`;
      throw p.fatal ? new FatalError(msg) : new Error(msg);
    }
    record(ctx.taskId, ctx.attempt, 'end');
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
