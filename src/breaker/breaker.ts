/**
 * One shared breaker: a thin wrapper over its Lua scripts (src/redis/lua/breaker-*.lua), each one
 * atomic, so every process agrees on the state and on who holds the half-open probes.
 */
import { randomBytes } from 'node:crypto';
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import type { BreakerPolicy } from '../model/breaker-policy.ts';
import type { BreakerState, BreakerView } from '../model/breaker-state.ts';

export type Admission = 'CLOSED' | 'PROBE' | 'DENIED';

export class SharedBreaker {
  readonly #redis: RedisConnection;
  readonly #k: ReturnType<typeof keys>['breaker'];
  #indexed = false;

  constructor(
    redis: RedisConnection,
    prefix: string,
    readonly name: string,
    readonly policy: BreakerPolicy,
  ) {
    this.#redis = redis;
    this.#k = keys(prefix).breaker;
  }

  async #index(): Promise<void> {
    if (this.#indexed) return;
    await this.#redis.sadd(this.#k.index, this.name);
    this.#indexed = true;
  }

  /** Adds outcomes (normally batched: see OutcomeBatcher); returns the state after. */
  async record(successes: number, failures: number, now = Date.now()): Promise<BreakerState> {
    await this.#index();
    const p = this.policy;
    return (await scripts.breakerRecord.run(this.#redis, [this.#k.state(this.name)], [
      now, successes, failures, p.failureRatio, p.minRequests, p.windowMs, this.#k.events, this.name,
    ])) as BreakerState;
  }

  /** Asks to make one call: CLOSED (go), PROBE (go, and report with probeResult), DENIED. */
  async acquire(token: string, permitTtlMs: number, now = Date.now()): Promise<Admission> {
    await this.#index();
    return scripts.breakerAcquire.run(this.#redis, [this.#k.state(this.name), this.#k.probes(this.name)], [
      now, this.policy.openMs, this.policy.halfOpenProbes, token, permitTtlMs, this.#k.events, this.name,
    ]);
  }

  async probeResult(token: string, ok: boolean, now = Date.now()): Promise<BreakerState> {
    return (await scripts.breakerProbe.run(this.#redis, [this.#k.state(this.name), this.#k.probes(this.name)], [
      now, token, ok ? '1' : '0', this.policy.halfOpenProbes, this.#k.events, this.name,
    ])) as BreakerState;
  }

  async reset(now = Date.now()): Promise<void> {
    await this.#index();
    await scripts.breakerReset.run(this.#redis, [this.#k.state(this.name), this.#k.probes(this.name)], [now, this.#k.events, this.name]);
  }

  async read(now = Date.now()): Promise<BreakerView> {
    return readBreaker(this.#redis, this.#k, this.name, this.policy, now);
  }

  /**
   * Runs `fn` through the breaker: while CLOSED it runs and its outcome is recorded; a probe
   * reports its result; DENIED throws BreakerOpenError without calling fn.
   */
  async run<T>(fn: () => Promise<T> | T, permitTtlMs = 60_000): Promise<T> {
    const token = randomBytes(8).toString('hex');
    const admission = await this.acquire(token, permitTtlMs);
    if (admission === 'DENIED') throw new BreakerOpenError(this.name, this.policy.openMs);
    try {
      const value = await fn();
      await (admission === 'PROBE' ? this.probeResult(token, true) : this.record(1, 0));
      return value;
    } catch (err) {
      await (admission === 'PROBE' ? this.probeResult(token, false) : this.record(0, 1));
      throw err;
    }
  }
}

export async function readBreaker(
  redis: RedisConnection,
  k: ReturnType<typeof keys>['breaker'],
  name: string,
  policy: Pick<BreakerPolicy, 'openMs' | 'windowMs'>,
  now = Date.now(),
): Promise<BreakerView> {
  const [hash, probes] = await Promise.all([redis.hgetall(k.state(name)), redis.zcount(k.probes(name), String(now), '+inf')]);
  const state = (hash.state as BreakerState | undefined) ?? 'CLOSED';
  let successes = 0;
  let failures = 0;
  if (state === 'CLOSED') {
    // The buckets still inside the window as of now (the same rule breaker-record applies).
    const bucket = Math.floor(now / Math.max(1, Math.floor(policy.windowMs / 10)));
    for (let i = 0; i < 10; i++) {
      const stamp = Number(hash[`t${i}`] ?? -1);
      if (stamp > bucket - 10 && stamp <= bucket) {
        successes += Number(hash[`s${i}`] ?? 0);
        failures += Number(hash[`f${i}`] ?? 0);
      }
    }
  }
  const openMs = policy.openMs;
  const view: BreakerView = { name, state, trips: Number(hash.trips ?? 0), window: { successes, failures }, probesInFlight: probes };
  if (hash.openedAt) {
    view.openedAt = new Date(Number(hash.openedAt)).toISOString();
    if (state === 'OPEN') view.halfOpenAt = new Date(Number(hash.openedAt) + openMs).toISOString();
  }
  if (hash.changedAt) view.changedAt = new Date(Number(hash.changedAt)).toISOString();
  if (hash.reason) view.reason = hash.reason;
  return view;
}

export class BreakerOpenError extends Error {
  readonly code = 'BREAKER_OPEN';
  readonly retryAfterMs: number;
  constructor(readonly breaker: string, openMs: number) {
    super(`circuit breaker ${breaker} is open`);
    this.name = 'BreakerOpenError';
    this.retryAfterMs = openMs;
  }
}
