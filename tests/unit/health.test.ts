import { describe, expect, it } from 'vitest';
import { OutcomeWindow, defaultCheck, runCheck } from '../../src/health/check.ts';
import { HealthMonitor } from '../../src/health/monitor.ts';
import { DEFAULT_HEALTH_POLICY } from '../../src/model/health-policy.ts';
import { HealthTracker, type CheckOutcome } from '../../src/health/tracker.ts';

const ok = (durationMs = 10): CheckOutcome => ({ ok: true, durationMs });
const fail = (error = 'boom', durationMs = 10): CheckOutcome => ({ ok: false, durationMs, error });
const tracker = (over: Partial<typeof DEFAULT_HEALTH_POLICY> = {}) => new HealthTracker({ ...DEFAULT_HEALTH_POLICY, ...over });

describe('HealthTracker', () => {
  it('is UNKNOWN before the first check', () => {
    expect(tracker().health).toBe('UNKNOWN');
  });

  it('becomes HEALTHY on a passing check, DEGRADED on a slow one', () => {
    const t = tracker({ degradedMs: 100 });
    expect(t.record(ok(50))).toEqual({ from: 'UNKNOWN', to: 'HEALTHY', reason: 'check passed' });
    expect(t.record(ok(150))).toMatchObject({ from: 'HEALTHY', to: 'DEGRADED', reason: expect.stringMatching(/150 ms \(degradedMs 100\)/) });
    expect(t.record(ok(20))).toMatchObject({ to: 'HEALTHY' });
  });

  it('counts consecutive failures and turns UNHEALTHY at unhealthyAfter', () => {
    const t = tracker({ unhealthyAfter: 3 });
    t.record(ok());
    expect(t.record(fail())).toBeUndefined();
    expect(t.record(fail())).toBeUndefined();
    expect(t.snapshot().consecutiveFailures).toBe(2);
    expect(t.record(fail('down'))).toMatchObject({ from: 'HEALTHY', to: 'UNHEALTHY', reason: expect.stringMatching(/3 consecutive.*down/) });
  });

  it('hysteresis: two failures then a success stay HEALTHY and reset the count', () => {
    const t = tracker({ unhealthyAfter: 3 });
    t.record(ok());
    t.record(fail());
    t.record(fail());
    expect(t.record(ok())).toBeUndefined();
    expect(t.health).toBe('HEALTHY');
    expect(t.snapshot().consecutiveFailures).toBe(0);
    t.record(fail());
    t.record(fail());
    expect(t.health).toBe('HEALTHY');
  });

  it('one success brings an UNHEALTHY agent back', () => {
    const t = tracker({ unhealthyAfter: 1 });
    t.record(fail());
    expect(t.health).toBe('UNHEALTHY');
    expect(t.record(ok())).toMatchObject({ from: 'UNHEALTHY', to: 'HEALTHY' });
  });

  it('tracks the response time as an EMA with alpha 0.3: 100 then 200 gives 130', () => {
    const t = tracker();
    t.record(ok(100));
    expect(t.snapshot().responseTimeMs).toBe(100);
    t.record(ok(200));
    expect(t.snapshot().responseTimeMs).toBeCloseTo(130, 10);
  });

  it('honours a check that reports itself degraded', () => {
    const t = tracker();
    expect(t.record({ ok: true, durationMs: 1, degraded: 'disk 95% full' })).toMatchObject({ to: 'DEGRADED', reason: 'disk 95% full' });
  });
});

describe('runCheck', () => {
  it('times a passing check', async () => {
    const outcome = await runCheck(() => new Promise<void>((r) => setTimeout(r, 30)), 1000);
    expect(outcome.ok).toBe(true);
    expect(outcome.durationMs).toBeGreaterThanOrEqual(25);
  });

  it('turns a throw (sync or async) into a failure with its message', async () => {
    expect(await runCheck(() => { throw new Error('no db'); }, 1000)).toMatchObject({ ok: false, error: 'no db' });
    expect(await runCheck(async () => { throw new Error('no cache'); }, 1000)).toMatchObject({ ok: false, error: 'no cache' });
  });

  it('fails a check that runs past checkTimeoutMs with "timeout" in the error, and aborts it', async () => {
    let aborted = false;
    const outcome = await runCheck((signal) => new Promise<void>(() => signal.addEventListener('abort', () => (aborted = true))), 50);
    expect(outcome).toMatchObject({ ok: false, error: expect.stringMatching(/timeout/) });
    expect(aborted).toBe(true);
  });
});

describe('HealthMonitor', () => {
  it('ensureReady resolves once a check passes', async () => {
    let calls = 0;
    const m = new HealthMonitor(() => { if (++calls < 3) throw new Error('warming up'); }, { ...DEFAULT_HEALTH_POLICY, intervalMs: 10 });
    await m.ensureReady(2000);
    expect(calls).toBe(3);
    expect(m.snapshot().health).toBe('HEALTHY');
  });

  it('ensureReady gives up after its bound with the last error', async () => {
    const m = new HealthMonitor(() => { throw new Error('database unreachable'); }, { ...DEFAULT_HEALTH_POLICY, intervalMs: 10 });
    await expect(m.ensureReady(100)).rejects.toThrow(/did not pass within 100 ms.*database unreachable/);
  });

  it('emits every transition', async () => {
    const results = [true, false, false, false, true];
    const m = new HealthMonitor(() => { if (!results.shift()) throw new Error('x'); }, { ...DEFAULT_HEALTH_POLICY, unhealthyAfter: 3 });
    const seen: string[] = [];
    m.on('change', (t) => seen.push(`${t.from}->${t.to}`));
    for (let i = 0; i < 5; i++) await m.checkOnce();
    expect(seen).toEqual(['UNKNOWN->HEALTHY', 'HEALTHY->UNHEALTHY', 'UNHEALTHY->HEALTHY']);
  });
});

describe('default check', () => {
  it('is degraded when most recent tasks failed, healthy otherwise', async () => {
    const window = new OutcomeWindow(60_000);
    const check = defaultCheck(window, { minOutcomes: 4, errorRateDegraded: 0.5 });
    try {
      for (let i = 0; i < 4; i++) window.record(true);
      expect(await runCheck(check, 1000)).toEqual({ ok: true, durationMs: expect.any(Number) });
      for (let i = 0; i < 6; i++) window.record(false);
      expect(await runCheck(check, 1000)).toMatchObject({ ok: true, degraded: '6 of the last 10 tasks failed' });
    } finally {
      check.stop();
    }
  });

  it('forgets outcomes older than its window', () => {
    const window = new OutcomeWindow(3000);
    window.record(false, 0);
    window.record(true, 2500);
    expect(window.rate(3000)).toEqual({ total: 1, failed: 0 });
    expect(window.rate(2900)).toEqual({ total: 2, failed: 1 });
  });
});
