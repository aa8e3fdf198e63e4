import { describe, expect, it } from 'vitest';
import { RetryAfterError } from '../../src/model/errors.ts';
import { backoffSchema, nominalDelay, retryDelay, type BackoffInput } from '../../src/model/backoff.ts';
import { backoffStrategy } from '../../src/task/backoff-strategy.ts';

const policy = (b: BackoffInput) => backoffSchema.parse(b);

describe('backoff', () => {
  it('computes exponential, linear and fixed nominal delays', () => {
    expect([1, 2, 3, 4].map((a) => nominalDelay(policy({ type: 'exponential', delayMs: 100, factor: 3 }), a))).toEqual([100, 300, 900, 2700]);
    expect([1, 2, 3].map((a) => nominalDelay(policy({ type: 'linear', delayMs: 100 }), a))).toEqual([100, 200, 300]);
    expect([1, 5].map((a) => nominalDelay(policy({ type: 'fixed', delayMs: 250 }), a))).toEqual([250, 250]);
  });

  it('keeps delays within the jitter band, and they are not all equal', () => {
    const b = policy({ type: 'exponential', delayMs: 1000, jitter: 0.2 });
    for (const attempt of [1, 2, 3]) {
      const delays = Array.from({ length: 500 }, () => retryDelay(b, attempt));
      const nominal = nominalDelay(b, attempt);
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(nominal * 0.8);
      expect(Math.max(...delays)).toBeLessThanOrEqual(nominal * 1.2);
      expect(new Set(delays).size).toBeGreaterThan(50);
    }
  });

  it('applies jitter before the cap: no delay exceeds maxDelayMs', () => {
    const b = policy({ type: 'exponential', delayMs: 1000, maxDelayMs: 5000, jitter: 0.5 });
    const delays = Array.from({ length: 1000 }, (_, i) => retryDelay(b, 1 + (i % 10)));
    expect(Math.max(...delays)).toBe(5000);
    expect(delays.every((d) => d <= 5000)).toBe(true);
    // the edges of the band, with a chosen random value
    expect(retryDelay(b, 1, () => 0)).toBe(500);
    expect(retryDelay(b, 1, () => 1)).toBe(1500);
    expect(retryDelay(b, 20, () => 0)).toBe(5000);
  });

  it.each([
    [{ delayMs: -1 }, 'delayMs'],
    [{ jitter: 1.5 }, 'jitter'],
    [{ factor: 0.5 }, 'factor'],
    [{ delayMs: 10_000, maxDelayMs: 1000 }, 'maxDelayMs'],
    [{ type: 'quadratic' }, 'type'],
  ])('rejects %j, naming %s', (input, field) => {
    const r = backoffSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual([field]);
  });
});

describe('the agents backoff strategy', () => {
  it('uses the policy the task carries', () => {
    const job = { data: { backoff: policy({ type: 'fixed', delayMs: 700, jitter: 0 }) } };
    expect(backoffStrategy()(3, 'switchyard', new Error('x'), job as never)).toBe(700);
    // without one of its own, the type's policy applies
    expect(backoffStrategy(policy({ type: 'fixed', delayMs: 123, jitter: 0 }))(3, 'switchyard', new Error('x'), { data: {} } as never)).toBe(123);
  });

  it('honours RetryAfterError, also after it crossed a process as JSON', () => {
    expect(backoffStrategy()(1, 'switchyard', new RetryAfterError(4321), undefined)).toBe(4321);
    const revived = Object.assign(new Error('retry after 99 ms'), JSON.parse(JSON.stringify({ code: 'RETRY_AFTER', retryAfterMs: 99 })));
    expect(backoffStrategy()(1, 'switchyard', revived, undefined)).toBe(99);
  });
});
