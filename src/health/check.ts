/**
 * Running a health check: bounded by checkTimeoutMs, timed, never throwing. The default check
 * looks at the agent itself: event-loop lag and the recent error rate of its handlers.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { CheckOutcome } from './tracker.ts';

/** A check resolves (optionally with `{degraded: reason}`) when healthy and throws when not. */
export type HealthCheck = (signal: AbortSignal) => Promise<void | { degraded?: string }> | void | { degraded?: string };

export async function runCheck(check: HealthCheck, timeoutMs: number): Promise<CheckOutcome> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      Promise.resolve().then(() => check(controller.signal)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`health check timeout after ${timeoutMs} ms (checkTimeoutMs)`)), timeoutMs);
      }),
    ]);
    const durationMs = performance.now() - started;
    return result && typeof result === 'object' && result.degraded ? { ok: true, durationMs, degraded: result.degraded } : { ok: true, durationMs };
  } catch (err) {
    controller.abort();
    return { ok: false, durationMs: performance.now() - started, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Outcomes of the last `windowMs` of handler runs, for the default check's error rate. */
export class OutcomeWindow {
  #events: Array<{ at: number; ok: boolean }> = [];
  constructor(private readonly windowMs = 30_000) {}

  record(ok: boolean, at = Date.now()): void {
    this.#events.push({ at, ok });
    if (this.#events.length > 10_000) this.#events.splice(0, this.#events.length - 10_000);
  }

  rate(now = Date.now()): { total: number; failed: number } {
    const from = now - this.windowMs;
    let i = 0;
    while (i < this.#events.length && this.#events[i]!.at < from) i++;
    if (i > 0) this.#events.splice(0, i);
    return { total: this.#events.length, failed: this.#events.filter((e) => !e.ok).length };
  }
}

export interface DefaultCheckOptions {
  /** Event-loop delay (p99 since the last check) above which the agent is DEGRADED / failing. */
  lagDegradedMs?: number;
  lagFailMs?: number;
  /** Share of failed handler runs in the window above which the agent is DEGRADED (with at least minOutcomes). */
  errorRateDegraded?: number;
  minOutcomes?: number;
}

/**
 * The check every agent gets unless its worker declares one. A blocked event loop is a failure
 * (the agent cannot renew job locks); a high handler error rate is DEGRADED, not UNHEALTHY: bad
 * payloads or a failing downstream are the circuit breaker's business, not a reason to stop pulling.
 */
export function defaultCheck(outcomes: OutcomeWindow, opts: DefaultCheckOptions = {}): HealthCheck & { stop(): void } {
  const { lagDegradedMs = 200, lagFailMs = 2000, errorRateDegraded = 0.5, minOutcomes = 10 } = opts;
  const lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  const check = () => {
    const p99 = lag.percentile(99) / 1e6;
    lag.reset();
    if (p99 > lagFailMs) throw new Error(`event loop blocked: p99 delay ${Math.round(p99)} ms`);
    if (p99 > lagDegradedMs) return { degraded: `event loop delay p99 ${Math.round(p99)} ms` };
    const { total, failed } = outcomes.rate();
    if (total >= minOutcomes && failed / total >= errorRateDegraded) {
      return { degraded: `${failed} of the last ${total} tasks failed` };
    }
    return undefined;
  };
  return Object.assign(check, { stop: () => lag.disable() });
}
