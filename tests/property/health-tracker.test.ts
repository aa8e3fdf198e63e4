/**
 * The health tracker's hysteresis as a property over any sequence of check outcomes: the state is
 * a function of the history's tail (DESIGN.md, "Registry and health"):
 * - `unhealthyAfter` failures in a row, or more -> UNHEALTHY;
 * - last check passed -> DEGRADED if it said so or took longer than degradedMs, else HEALTHY;
 * - fewer failures in a row than that -> whatever it was at the last passing check (UNKNOWN if none):
 *   one bad check never flips a healthy agent, one good one resets the count;
 * plus the EMA of response times (ema = a * latest + (1 - a) * ema) and the transitions reported.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Health } from '../../src/model/health-state.ts';
import { HealthTracker, type CheckOutcome } from '../../src/health/tracker.ts';
import { expectSame, expectThat } from '../support/property-check.ts';

const outcomeArb: fc.Arbitrary<CheckOutcome> = fc.oneof(
  fc.record({ ok: fc.constant(true as const), durationMs: fc.integer({ min: 0, max: 2000 }) }),
  fc.record({ ok: fc.constant(true as const), durationMs: fc.integer({ min: 0, max: 2000 }), degraded: fc.constantFrom('slow downstream', 'high error rate') }),
  fc.record({ ok: fc.constant(false as const), durationMs: fc.integer({ min: 0, max: 5000 }), error: fc.constantFrom('boom', 'health check timeout') }),
);
const policyArb = fc.record({
  degradedMs: fc.integer({ min: 1, max: 1500 }),
  unhealthyAfter: fc.integer({ min: 1, max: 6 }),
  emaAlpha: fc.oneof(fc.constant(0.3), fc.double({ min: 0.01, max: 1, noNaN: true })),
});

/** The health the spec gives after `history`, read from its tail. */
function expected(history: readonly CheckOutcome[], p: { degradedMs: number; unhealthyAfter: number }): { health: Health; failures: number } {
  let failures = 0;
  while (failures < history.length && !history[history.length - 1 - failures]!.ok) failures++;
  if (failures >= p.unhealthyAfter) return { health: 'UNHEALTHY', failures };
  const lastPass = history[history.length - 1 - failures];
  if (!lastPass) return { health: 'UNKNOWN', failures };
  if (!lastPass.ok) throw new Error('unreachable');
  if (failures > 0) return { health: expected(history.slice(0, history.length - failures), p).health, failures };
  return { health: lastPass.degraded || lastPass.durationMs > p.degradedMs ? 'DEGRADED' : 'HEALTHY', failures: 0 };
}

describe('HealthTracker', () => {
  it('follows the consecutive-failure rule with hysteresis, an EMA of response times, and reports exactly the changes', () => {
    fc.assert(
      fc.property(policyArb, fc.array(outcomeArb, { maxLength: 40 }), (policy, outcomes) => {
        const tracker = new HealthTracker(policy);
        expect(tracker.health).toBe('UNKNOWN');
        let ema: number | undefined;
        let before: Health = 'UNKNOWN';
        let min = Infinity;
        let max = -Infinity;
        outcomes.forEach((outcome, i) => {
          const transition = tracker.record(outcome);
          const want = expected(outcomes.slice(0, i + 1), policy);
          const snap = tracker.snapshot();
          const at = () => `check ${i} (${JSON.stringify(outcome)}) of ${JSON.stringify(outcomes.slice(0, i + 1))}`;
          expectSame(
            { health: snap.health, failures: snap.consecutiveFailures, checks: snap.checks, lastError: snap.lastError },
            { health: want.health, failures: want.failures, checks: i + 1, lastError: outcome.ok ? undefined : outcome.error },
            at,
          );
          expectSame(transition && { from: transition.from, to: transition.to }, want.health === before ? undefined : { from: before, to: want.health }, at);
          ema = ema === undefined ? outcome.durationMs : policy.emaAlpha * outcome.durationMs + (1 - policy.emaAlpha) * ema;
          min = Math.min(min, outcome.durationMs);
          max = Math.max(max, outcome.durationMs);
          const got = snap.responseTimeMs ?? NaN;
          expectThat(Math.abs(got - ema) <= 1e-6 * Math.max(1, ema), () => `${at()}: response time ${got}, EMA ${ema}`);
          expectThat(got >= min - 1e-6 && got <= max + 1e-6, () => `${at()}: response time ${got} outside [${min}, ${max}]`);
          before = want.health;
        });
      }),
      { numRuns: 1000, seed: 0x4ea17 },
    );
  });
});
