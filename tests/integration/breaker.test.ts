import { afterAll, describe, expect, it } from 'vitest';
import type { RedisConnection } from '../../src/redis/connection.ts';
import { BreakerOpenError, SharedBreaker } from '../../src/breaker/breaker.ts';
import type { BreakerPolicy } from '../../src/model/breaker-policy.ts';
import { BreakerWatch } from '../../src/breaker/watch.ts';
import { BREAKER_PRESETS } from '../../src/model/breaker-policy.ts';
import { connectRedis, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('breaker');
const T0 = 1_900_000_000_000;
let n = 0;
const breaker = (p: Partial<BreakerPolicy> = {}, conn: RedisConnection = redis) =>
  new SharedBreaker(conn, prefix, `test-${++n}`, { failureRatio: 0.5, minRequests: 4, windowMs: 10_000, openMs: 1000, halfOpenProbes: 1, ...p });

describe('tripping', () => {
  it('trips at exactly the ratio (>=), only once minRequests outcomes are in the window', async () => {
    const b = breaker({ failureRatio: 0.3, minRequests: 10 });
    expect(await b.record(0, 3, T0)).toBe('CLOSED'); // 100 % failures, but only 3 outcomes
    expect(await b.record(6, 0, T0)).toBe('CLOSED'); // 3 of 9
    expect(await b.record(1, 0, T0)).toBe('OPEN'); // 3 of 10 = 0.3 >= 0.3
    expect((await b.read(T0)).trips).toBe(1);

    const c = breaker({ failureRatio: 0.3, minRequests: 10 });
    expect(await c.record(8, 2, T0)).toBe('CLOSED'); // 0.2 < 0.3
    expect((await c.read(T0)).window).toEqual({ successes: 8, failures: 2 });
  });

  it('reports the window as of now, across buckets', async () => {
    const b = breaker({ minRequests: 100, windowMs: 1000 });
    await b.record(3, 1, T0 + 50);
    await b.record(2, 0, T0 + 450);
    expect((await b.read(T0 + 500)).window).toEqual({ successes: 5, failures: 1 });
    expect((await b.read(T0 + 1200)).window).toEqual({ successes: 2, failures: 0 });
    expect((await b.read(T0 + 5000)).window).toEqual({ successes: 0, failures: 0 });
  });

  it('lets old outcomes age out of the rolling window', async () => {
    const b = breaker({ failureRatio: 0.5, minRequests: 5, windowMs: 1000 });
    expect(await b.record(0, 4, T0)).toBe('CLOSED');
    // 4 old failures + 1 new would trip; past the window only the new one counts.
    expect(await b.record(0, 1, T0 + 1500)).toBe('CLOSED');
    expect(await b.record(0, 3, T0 + 1600)).toBe('CLOSED'); // 4 in the window, still under minRequests
    expect(await b.record(0, 1, T0 + 1700)).toBe('OPEN');
  });
});

describe('open, half-open, probes', () => {
  it('stays OPEN for openMs, then admits probes (HALF_OPEN)', async () => {
    const b = breaker({ openMs: 1000 });
    await b.record(0, 4, T0);
    expect(await b.acquire('x', 5000, T0 + 999)).toBe('DENIED');
    expect(await b.acquire('p1', 5000, T0 + 1000)).toBe('PROBE');
    expect((await b.read(T0 + 1000)).state).toBe('HALF_OPEN');
    expect(await b.acquire('p2', 5000, T0 + 1001)).toBe('DENIED'); // budget of 1 probe
  });

  it('bounds probes across connections racing for them', async () => {
    const other = connectRedis();
    try {
      const name = `race-${++n}`;
      const policy = { failureRatio: 0.5, minRequests: 4, windowMs: 10_000, openMs: 100, halfOpenProbes: 2 };
      const a = new SharedBreaker(redis, prefix, name, policy);
      const b = new SharedBreaker(other, prefix, name, policy);
      await a.record(0, 4, T0);
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).acquire(`t${i}`, 5000, T0 + 200)));
      expect(results.filter((r) => r === 'PROBE')).toHaveLength(2);
      expect(results.filter((r) => r === 'DENIED')).toHaveLength(38);
    } finally {
      await other.quit();
    }
  });

  it('a permit whose holder died expires and frees the slot', async () => {
    const b = breaker({ openMs: 10 });
    await b.record(0, 4, T0);
    expect(await b.acquire('dead-holder', 500, T0 + 20)).toBe('PROBE');
    expect(await b.acquire('next', 500, T0 + 100)).toBe('DENIED');
    expect(await b.acquire('next', 500, T0 + 521)).toBe('PROBE');
  });

  it('probe successes close it; a failed probe re-opens it and counts a trip', async () => {
    const b = breaker({ openMs: 10, halfOpenProbes: 2 });
    await b.record(0, 4, T0);
    expect(await b.acquire('a', 5000, T0 + 10)).toBe('PROBE');
    expect(await b.acquire('b', 5000, T0 + 10)).toBe('PROBE');
    expect(await b.probeResult('a', true, T0 + 11)).toBe('HALF_OPEN');
    expect(await b.probeResult('b', true, T0 + 12)).toBe('CLOSED');
    expect(await b.read(T0 + 12)).toMatchObject({ state: 'CLOSED', trips: 1 });

    await b.record(0, 4, T0 + 20);
    expect((await b.read(T0 + 20)).trips).toBe(2);
    expect(await b.acquire('c', 5000, T0 + 40)).toBe('PROBE');
    expect(await b.probeResult('c', false, T0 + 41)).toBe('OPEN');
    expect(await b.read(T0 + 41)).toMatchObject({ state: 'OPEN', trips: 3, reason: 'a probe failed' });
    expect(await b.probeResult('stale-token', true, T0 + 42)).toBe('OPEN'); // not a live permit: no effect
  });

  it('reset closes it at once and keeps the trip count', async () => {
    const b = breaker();
    await b.record(0, 4, T0);
    await b.reset(T0 + 1);
    expect(await b.read(T0 + 1)).toMatchObject({ state: 'CLOSED', trips: 1, window: { successes: 0, failures: 0 }, reason: 'reset by an operator' });
  });

  it('run() guards a call: records outcomes, and refuses while open without calling', async () => {
    const b = breaker({ minRequests: 2, openMs: 60_000 });
    await expect(b.run(() => Promise.reject(new Error('smtp down')))).rejects.toThrow('smtp down');
    await expect(b.run(() => Promise.reject(new Error('smtp down')))).rejects.toThrow('smtp down');
    let called = false;
    await expect(b.run(() => (called = true))).rejects.toBeInstanceOf(BreakerOpenError);
    expect(called).toBe(false);
  });
});

describe('BreakerWatch', () => {
  const watches: BreakerWatch[] = [];
  afterAll(() => Promise.all(watches.map((w) => w.stop())));

  it('every process sees a transition within 100 ms', async () => {
    const make = async () => {
      const w = new BreakerWatch(redis, connectRedis(), prefix, () => ({ ...BREAKER_PRESETS.critical, openMs: 1000 }), 60_000);
      await w.start();
      watches.push(w);
      return w;
    };
    const [w1, w2] = await Promise.all([make(), make()]);
    const b = breaker();
    const seen = Promise.all([w1, w2].map((w) => new Promise<number>((r) => w.on('change', (e) => e.name === b.name && e.state === 'OPEN' && r(Date.now())))));
    const t = Date.now();
    await b.record(0, 4);
    const times = await seen;
    for (const at of times) expect(at - t).toBeLessThan(100);
    expect(w1.state(b.name)).toBe('OPEN');
    expect(w2.halfOpenAt(b.name)).toBeGreaterThan(t);
    await b.reset();
    await waitFor(() => w2.state(b.name) === 'CLOSED', { timeoutMs: 1000, what: 'the reset to reach the watch' });
  });
});
