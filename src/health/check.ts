/**
 * Running a health check: bounded by checkTimeoutMs, timed, never throwing. The default check
 * looks at the agent itself: event-loop lag and the recent error rate of its handlers.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
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

/**
 * Outcomes of handler runs over the last `windowMs`, for the default check's error rate: counted
 * in one-second buckets, so recording a task is O(1) whatever the throughput.
 */
export class OutcomeWindow {
  readonly #seconds: number;
  readonly #stamp: Int32Array;
  readonly #ok: Uint32Array;
  readonly #failed: Uint32Array;

  constructor(windowMs = 30_000) {
    this.#seconds = Math.max(1, Math.ceil(windowMs / 1000));
    this.#stamp = new Int32Array(this.#seconds).fill(-1);
    this.#ok = new Uint32Array(this.#seconds);
    this.#failed = new Uint32Array(this.#seconds);
  }

  record(ok: boolean, at = Date.now()): void {
    const second = Math.floor(at / 1000);
    const i = second % this.#seconds;
    if (this.#stamp[i] !== second) {
      this.#stamp[i] = second;
      this.#ok[i] = 0;
      this.#failed[i] = 0;
    }
    if (ok) this.#ok[i]!++;
    else this.#failed[i]!++;
  }

  rate(now = Date.now()): { total: number; failed: number } {
    const newest = Math.floor(now / 1000);
    let total = 0;
    let failed = 0;
    for (let i = 0; i < this.#seconds; i++) {
      const stamp = this.#stamp[i]!;
      if (stamp > newest - this.#seconds && stamp <= newest) {
        total += this.#ok[i]! + this.#failed[i]!;
        failed += this.#failed[i]!;
      }
    }
    return { total, failed };
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
  const lag = monitorEventLoopDelay({ resolution: 20 });
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
