/**
 * The Redis-shared breaker under races: several "processes" (each with its own connection) ask
 * for calls and half-open probe permits, report outcomes, reset it, while a logical clock moves;
 * fc.scheduler picks the order their commands reach Redis in. Checked after every command:
 * - the state in Redis is what a model of the policy says (replies too, one by one);
 * - every change is a legal transition for the script that made it (CLOSED -> OPEN only by
 *   outcomes at or over the ratio past minRequests, OPEN -> HALF_OPEN only by an acquire openMs
 *   after the trip, HALF_OPEN -> CLOSED after halfOpenProbes successes, -> OPEN on a failed probe);
 * - never more probe permits out than halfOpenProbes.
 * Time is passed to the breaker (its `now` arguments), never faked inside Redis.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, describe, it } from 'vitest';
import { SharedBreaker, type Admission } from '../../src/breaker/breaker.ts';
import type { BreakerPolicy } from '../../src/model/breaker-policy.ts';
import type { BreakerState } from '../../src/model/breaker-state.ts';
import { keys } from '../../src/redis/keys.ts';
import { scripts } from '../../src/redis/scripts.ts';
import { expectSame, expectThat } from '../support/property-check.ts';
import { Interleaver, scriptCall, type Step } from '../support/property-redis.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';

const { prefix, redis } = useRedisPrefix('prop-breaker');
/** Three connections: the processes share them round-robin (the first is also the observer's). */
const others = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
const connections = [redis, ...others];
afterAll(() => Promise.all(others.map((c) => c.quit())));

/** A multiple of the bucket width (windowMs / 10), so every outcome of a run falls in one window. */
const T0 = 1_900_000_020_000;
const WINDOW_MS = 600_000;
/** A live holder reports long before its permit could expire; a dying one's expires within a few ticks. */
const LIVE_TTL_MS = 1_000_000;
const DEAD_TTL_MS = 15;

/** What the policy says the breaker does, one call at a time (DESIGN.md, "Circuit breakers"). */
class BreakerModel {
  state: BreakerState = 'CLOSED';
  trips = 0;
  openedAt: number | undefined;
  successes = 0;
  failures = 0;
  probeSuccesses = 0;
  /** Probe permits out: token -> when it expires. */
  readonly permits = new Map<string, number>();

  constructor(readonly p: BreakerPolicy) {}

  #open(now: number): void {
    this.state = 'OPEN';
    this.trips++;
    this.openedAt = now;
    this.successes = this.failures = this.probeSuccesses = 0;
    this.permits.clear();
  }

  record(successes: number, failures: number, now: number): BreakerState {
    if (this.state !== 'CLOSED') return this.state; // outcomes only count while CLOSED
    this.successes += successes;
    this.failures += failures;
    const total = this.successes + this.failures;
    if (total >= this.p.minRequests && this.failures / total >= this.p.failureRatio) this.#open(now);
    return this.state;
  }

  acquire(token: string, ttlMs: number, now: number): Admission {
    if (this.state === 'CLOSED') return 'CLOSED';
    if (this.state === 'OPEN') {
      if (now < this.openedAt! + this.p.openMs) return 'DENIED';
      this.state = 'HALF_OPEN';
      this.probeSuccesses = 0;
      this.permits.clear();
    }
    for (const [t, expires] of this.permits) if (expires <= now) this.permits.delete(t); // a dead holder's slot frees up
    if (this.permits.size >= this.p.halfOpenProbes) return 'DENIED';
    this.permits.set(token, now + ttlMs);
    return 'PROBE';
  }

  probeResult(token: string, ok: boolean, now: number): BreakerState {
    if (!this.permits.delete(token) || this.state !== 'HALF_OPEN') return this.state; // not a live permit: no effect
    if (!ok) {
      this.#open(now);
      return this.state;
    }
    if (++this.probeSuccesses < this.p.halfOpenProbes) return this.state;
    this.state = 'CLOSED';
    this.openedAt = undefined;
    this.probeSuccesses = 0;
    this.permits.clear();
    return this.state;
  }

  reset(): void {
    this.state = 'CLOSED';
    this.openedAt = undefined;
    this.successes = this.failures = this.probeSuccesses = 0;
    this.permits.clear();
  }
}

/** The breaker as stored in Redis, read between two commands. */
interface Stored {
  state: BreakerState;
  trips: number;
  openedAt: number | undefined;
  probeSuccesses: number;
  window: { successes: number; failures: number };
  permits: Map<string, number>;
}

async function readStored(name: string): Promise<Stored> {
  const k = keys(prefix).breaker;
  const [[e1, hash], [e2, flat]] = ((await redis.pipeline().hgetall(k.state(name)).zrange(k.probes(name), '0', '-1', 'WITHSCORES').exec()) ?? []) as [
    [Error | null, Record<string, string>],
    [Error | null, string[]],
  ];
  if (e1 || e2) throw e1 ?? e2;
  const window = { successes: 0, failures: 0 };
  for (let i = 0; i < 10; i++) {
    window.successes += Number(hash[`s${i}`] ?? 0);
    window.failures += Number(hash[`f${i}`] ?? 0);
  }
  const permits = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) permits.set(flat[i]!, Number(flat[i + 1]));
  return {
    state: (hash.state as BreakerState | undefined) ?? 'CLOSED',
    trips: Number(hash.trips ?? 0),
    openedAt: hash.openedAt === undefined ? undefined : Number(hash.openedAt),
    probeSuccesses: Number(hash.probeSuccesses ?? 0),
    window,
    permits,
  };
}

const SCRIPT_BY_SHA = new Map<string, 'record' | 'acquire' | 'probe' | 'reset'>([
  [scripts.breakerRecord.sha, 'record'],
  [scripts.breakerAcquire.sha, 'acquire'],
  [scripts.breakerProbe.sha, 'probe'],
  [scripts.breakerReset.sha, 'reset'],
]);

/** Which breaker script a command ran, and its ARGV. */
function scriptOf(step: Step): { script: string; argv: string[] } {
  const call = scriptCall(step);
  return call ? { script: SCRIPT_BY_SHA.get(call.sha) ?? 'unknown script', argv: call.argv } : { script: step.command, argv: [] };
}

/** The transition `step` made from `before` to `after` must be one its script may make, when the policy allows it. */
function expectLegal(step: Step, before: Stored, after: Stored, p: BreakerPolicy): void {
  if (before.state === after.state && before.trips === after.trips) return;
  const { script, argv } = scriptOf(step);
  const what = () => `${step.who}: ${script} ${argv.join(' ')} took ${before.state} (trips ${before.trips}) to ${after.state} (trips ${after.trips})`;
  const change = [before.state, after.state, after.trips - before.trips];
  const now = Number(argv[0]);
  switch (script) {
    case 'record': {
      expectSame(change, ['CLOSED', 'OPEN', 1], what);
      const failures = before.window.failures + Number(argv[2]);
      const total = before.window.successes + Number(argv[1]) + failures;
      expectThat(total >= p.minRequests && failures / total >= p.failureRatio, () => `${what()}: only ${failures} of ${total} failed`);
      return;
    }
    case 'acquire':
      expectSame(change, ['OPEN', 'HALF_OPEN', 0], what);
      expectThat(now >= before.openedAt! + p.openMs, () => `${what()}: before openMs had passed`);
      return;
    case 'probe':
      if (argv[2] === '1') {
        expectSame(change, ['HALF_OPEN', 'CLOSED', 0], what);
        expectThat(before.probeSuccesses + 1 >= p.halfOpenProbes, () => `${what()}: after ${before.probeSuccesses + 1} probe successes`);
      } else {
        expectSame(change, ['HALF_OPEN', 'OPEN', 1], what);
      }
      return;
    case 'reset':
      expectSame(change.slice(1), ['CLOSED', 0], what);
      return;
    default:
      expectThat(false, () => `${what()}: ${script} must not change a breaker`);
  }
}

interface Attempt {
  ok: boolean;
  /** The process dies holding a probe permit: it never reports. */
  dies: boolean;
}

const policyArb = fc.record({
  failureRatio: fc.constantFrom(0.25, 0.5, 2 / 3, 1),
  minRequests: fc.integer({ min: 1, max: 4 }),
  windowMs: fc.constant(WINDOW_MS),
  openMs: fc.integer({ min: 10, max: 30 }),
  halfOpenProbes: fc.integer({ min: 1, max: 3 }),
});
/** true one time in `n`. */
const oneIn = (n: number) => fc.integer({ min: 1, max: n }).map((k) => k === 1);
const attemptArb = fc.record({ ok: fc.boolean(), dies: oneIn(4) });
const scenarioArb = fc.record({
  policy: policyArb,
  startOpen: fc.boolean(),
  callers: fc.array(fc.array(attemptArb, { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 3 }),
  batches: fc.array(fc.record({ successes: fc.nat(3), failures: fc.nat(3) }), { maxLength: 2 }),
  reset: oneIn(4),
  ticks: fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 2, maxLength: 8 }),
});

let runs = 0;

describe('shared breaker under fc.scheduler races', () => {
  it('agrees with the policy model, takes only legal transitions, never over-grants probe permits', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.scheduler(), async (sc, s) => {
        const name = `race-${++runs}`;
        const p: BreakerPolicy = sc.policy;
        const model = new BreakerModel(p);
        const clock = { now: T0 };
        if (sc.startOpen) {
          await new SharedBreaker(redis, prefix, name, p).record(0, p.minRequests, T0);
          model.record(0, p.minRequests, T0);
        }
        let before = await readStored(name);
        const il = new Interleaver(s, async (step) => {
          const after = await readStored(name);
          expectLegal(step, before, after, p);
          expectThat(after.permits.size <= p.halfOpenProbes, () => `${after.permits.size} probe permits out, halfOpenProbes ${p.halfOpenProbes}`);
          const at = () => `after ${step.who}: ${scriptOf(step).script}`;
          const { state, trips, openedAt } = after;
          expectSame(
            { state, trips, openedAt, permits: Object.fromEntries(after.permits) },
            { state: model.state, trips: model.trips, openedAt: model.openedAt, permits: Object.fromEntries(model.permits) },
            at,
          );
          if (after.state === 'HALF_OPEN') expectSame(after.probeSuccesses, model.probeSuccesses, at);
          if (after.state === 'CLOSED') expectSame(after.window, { successes: model.successes, failures: model.failures }, at);
          before = after;
        });
        const breaker = (i: number, who: string) => new SharedBreaker(il.connection(connections[i % connections.length]!, who), prefix, name, p);

        const caller = async (i: number, attempts: Attempt[]) => {
          const who = `caller ${i}`;
          const b = breaker(i, who);
          for (const [j, a] of attempts.entries()) {
            const token = `${i}.${j}`;
            const ttl = a.dies ? DEAD_TTL_MS : LIVE_TTL_MS;
            const now = clock.now; // read before the call: it may reach Redis late, as over a real network
            const admission = await b.acquire(token, ttl, now);
            expectSame(admission, model.acquire(token, ttl, now), () => `${who} acquire at +${now - T0}`);
            if (admission === 'DENIED') continue;
            if (admission === 'PROBE' && a.dies) return;
            await s.schedule(Promise.resolve(), `${who}: the call ${a.ok ? 'succeeds' : 'fails'}`);
            const at = clock.now;
            if (admission === 'PROBE') expectSame(await b.probeResult(token, a.ok, at), model.probeResult(token, a.ok, at), `${who} probe result`);
            else expectSame(await b.record(a.ok ? 1 : 0, a.ok ? 0 : 1, at), model.record(a.ok ? 1 : 0, a.ok ? 0 : 1, at), `${who} record`);
          }
        };
        const batcher = async () => {
          const b = breaker(0, 'batcher');
          for (const { successes, failures } of sc.batches) {
            const now = clock.now;
            expectSame(await b.record(successes, failures, now), model.record(successes, failures, now), 'batcher record');
          }
        };
        const admin = async () => {
          if (!sc.reset) return;
          await breaker(1, 'admin').reset(clock.now);
          model.reset();
        };
        const ticker = async () => {
          for (const ms of sc.ticks) {
            await s.schedule(Promise.resolve(), `clock +${ms} ms`);
            clock.now += ms;
          }
        };
        await il.run(Promise.all([...sc.callers.map((a, i) => caller(i, a)), batcher(), admin(), ticker()]));
      }),
      { numRuns: 1000, seed: 0x0b4ea6e4 },
    );
  }, 60_000);
});
