/**
 * Turns check outcomes into a health state with hysteresis: UNKNOWN until the first check passes
 * (or `unhealthyAfter` fail); a failure only counts toward UNHEALTHY, so one bad check does not
 * flip a healthy agent; one success resets the count. Response time is an EMA.
 */
import type { HealthPolicy } from '../model/health-policy.ts';
import type { Health } from '../model/health-state.ts';

export type CheckOutcome =
  | { ok: true; durationMs: number; /** the check itself reports trouble short of failing */ degraded?: string }
  | { ok: false; durationMs: number; error: string };

export interface HealthTransition {
  from: Health;
  to: Health;
  reason: string;
}

export interface HealthSnapshot {
  health: Health;
  consecutiveFailures: number;
  responseTimeMs: number | undefined;
  lastError: string | undefined;
  checks: number;
}

export class HealthTracker {
  #health: Health = 'UNKNOWN';
  #failures = 0;
  #ema: number | undefined;
  #lastError: string | undefined;
  #checks = 0;

  constructor(private readonly policy: Pick<HealthPolicy, 'degradedMs' | 'unhealthyAfter' | 'emaAlpha'>) {}

  get health(): Health {
    return this.#health;
  }

  snapshot(): HealthSnapshot {
    return { health: this.#health, consecutiveFailures: this.#failures, responseTimeMs: this.#ema, lastError: this.#lastError, checks: this.#checks };
  }

  /** Records one check; returns the transition when the state changed. */
  record(outcome: CheckOutcome): HealthTransition | undefined {
    this.#checks++;
    const a = this.policy.emaAlpha;
    this.#ema = this.#ema === undefined ? outcome.durationMs : a * outcome.durationMs + (1 - a) * this.#ema;
    let next: Health;
    let reason: string;
    if (outcome.ok) {
      this.#failures = 0;
      this.#lastError = undefined;
      if (outcome.degraded) {
        next = 'DEGRADED';
        reason = outcome.degraded;
      } else if (outcome.durationMs > this.policy.degradedMs) {
        next = 'DEGRADED';
        reason = `check took ${Math.round(outcome.durationMs)} ms (degradedMs ${this.policy.degradedMs})`;
      } else {
        next = 'HEALTHY';
        reason = 'check passed';
      }
    } else {
      this.#failures++;
      this.#lastError = outcome.error;
      next = this.#failures >= this.policy.unhealthyAfter ? 'UNHEALTHY' : this.#health;
      reason = `${this.#failures} consecutive failed check(s), last: ${outcome.error}`;
    }
    if (next === this.#health) return undefined;
    const transition = { from: this.#health, to: next, reason };
    this.#health = next;
    return transition;
  }
}
