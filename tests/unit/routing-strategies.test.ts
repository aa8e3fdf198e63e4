import { describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/model/candidate.ts';
import { LeastLoadedPicker } from '../../src/routing/least-loaded.ts';
import { RandomPicker } from '../../src/routing/random.ts';
import { RoundRobinPicker } from '../../src/routing/round-robin.ts';
import { WeightedPicker } from '../../src/routing/weighted.ts';

const c = (pool: string, weight = 1, backlog = 0, concurrency = 10): Candidate => ({ pool, weight, backlog, concurrency });
const tally = (picks: Candidate[]) => picks.reduce<Record<string, number>>((t, p) => ((t[p.pool] = (t[p.pool] ?? 0) + 1), t), {});

describe('weighted', () => {
  it('splits 10:1 over 10 000 tasks within ±1 % of 90.9 % / 9.1 %', () => {
    const w = new WeightedPicker();
    const pools = [c('premium', 10), c('standard', 1)];
    const t = tally(Array.from({ length: 10_000 }, () => w.pick('transform', pools)));
    expect(t.premium! / 10_000).toBeCloseTo(10 / 11, 2);
    expect(Math.abs(t.premium! / 10_000 - 0.909)).toBeLessThan(0.01);
    expect(Math.abs(t.standard! / 10_000 - 0.091)).toBeLessThan(0.01);
  });

  it('interleaves instead of sending bursts', () => {
    const w = new WeightedPicker();
    const seq = Array.from({ length: 11 }, () => w.pick('t', [c('a', 5), c('b', 5), c('c', 1)]).pool).join('');
    expect(seq).not.toMatch(/aaa|bbb/);
    expect(tally(seq.split('').map((p) => c(p)))).toEqual({ a: 5, b: 5, c: 1 });
  });

  it('adapts when the eligible set changes', () => {
    const w = new WeightedPicker();
    for (let i = 0; i < 5; i++) w.pick('t', [c('a', 1), c('b', 1)]);
    const t = tally(Array.from({ length: 100 }, () => w.pick('t', [c('a', 1)])));
    expect(t).toEqual({ a: 100 });
  });
});

describe('round-robin', () => {
  it('is an exact rotation', () => {
    const r = new RoundRobinPicker();
    const pools = [c('a'), c('b'), c('c')];
    expect(Array.from({ length: 9 }, () => r.pick('t', pools).pool).join('')).toBe('abcabcabc');
  });

  it('keeps a separate rotation per type', () => {
    const r = new RoundRobinPicker();
    expect([r.pick('x', [c('a'), c('b')]).pool, r.pick('y', [c('a'), c('b')]).pool, r.pick('x', [c('a'), c('b')]).pool]).toEqual(['a', 'a', 'b']);
  });
});

describe('least-loaded', () => {
  it('sends work away from a backed-up pool, relative to its concurrency', () => {
    const l = new LeastLoadedPicker();
    expect(l.pick('t', [c('busy', 1, 500, 10), c('idle', 1, 5, 10)]).pool).toBe('idle');
    // 100 waiting over 100 slots is lighter than 20 over 10.
    expect(new LeastLoadedPicker().pick('t', [c('small', 1, 20, 10), c('big', 1, 100, 100)]).pool).toBe('big');
  });

  it('spreads a burst between snapshots instead of piling onto one pool', () => {
    const l = new LeastLoadedPicker();
    const pools = [c('a', 1, 0, 10), c('b', 1, 0, 10)];
    const t = tally(Array.from({ length: 100 }, () => l.pick('t', pools)));
    expect(t).toEqual({ a: 50, b: 50 });
    l.reset();
    expect(l.pick('t', [c('a', 1, 50, 10), c('b', 1, 0, 10)]).pool).toBe('b');
  });
});

describe('random', () => {
  it('is uniform', () => {
    const r = new RandomPicker();
    const pools = [c('a'), c('b'), c('c'), c('d')];
    const t = tally(Array.from({ length: 40_000 }, () => r.pick('t', pools)));
    for (const n of Object.values(t)) expect(Math.abs(n / 40_000 - 0.25)).toBeLessThan(0.02);
  });
});
