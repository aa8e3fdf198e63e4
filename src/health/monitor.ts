/**
 * Runs an agent's health check every interval (never overlapping) and feeds the tracker; emits
 * each transition. `ensureReady` runs checks until the first one passes, or gives up.
 */
import { EventEmitter } from 'node:events';
import { SwitchyardError } from '../model/errors.ts';
import { runCheck, type HealthCheck } from './check.ts';
import type { HealthPolicy } from '../model/health-policy.ts';
import { isServing } from '../model/health-state.ts';
import { HealthTracker, type CheckOutcome, type HealthSnapshot, type HealthTransition } from './tracker.ts';

export class HealthMonitor extends EventEmitter<{ change: [HealthTransition]; checked: [CheckOutcome] }> {
  readonly #tracker: HealthTracker;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;

  constructor(
    private readonly check: HealthCheck,
    private readonly policy: HealthPolicy,
  ) {
    super();
    this.#tracker = new HealthTracker(policy);
  }

  snapshot(): HealthSnapshot {
    return this.#tracker.snapshot();
  }

  async checkOnce(): Promise<CheckOutcome> {
    const outcome = await runCheck(this.check, this.policy.checkTimeoutMs);
    const transition = this.#tracker.record(outcome);
    this.emit('checked', outcome);
    if (transition) this.emit('change', transition);
    return outcome;
  }

  /** Checks until the agent is HEALTHY or DEGRADED; throws after `timeoutMs` with the last error. */
  async ensureReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const outcome = await this.checkOnce();
      if (isServing(this.#tracker.health)) return;
      if (Date.now() >= deadline) {
        throw new SwitchyardError(
          'AGENT_NOT_READY',
          `the agent's health check did not pass within ${timeoutMs} ms (SWITCHYARD_READY_TIMEOUT_MS); last result: ${outcome.ok ? 'passed' : outcome.error}`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(this.policy.intervalMs, Math.max(0, deadline - Date.now()))));
    }
  }

  start(): void {
    this.#stopped = false;
    const loop = () => {
      this.#timer = setTimeout(() => {
        void this.checkOnce().finally(() => !this.#stopped && loop());
      }, this.policy.intervalMs);
      this.#timer.unref();
    };
    loop();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
