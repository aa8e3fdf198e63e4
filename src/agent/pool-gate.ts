/**
 * An agent's side of what its pool shares in Redis. The circuit breaker: admits each task (at no
 * Redis cost while the breaker is CLOSED, as a bounded probe while HALF_OPEN), reports outcomes in
 * batches, says when the agent should stop pulling (OPEN and not yet admitting probes), and holds the
 * breakers a handler names for its own downstreams (ctx.breaker). The type's rate per pool: a token
 * from the pool's bucket (GCRA, src/redis/lua/rate-limit.lua, on the server's clock) before a task
 * runs; bursts are a tenth of the rate, so no window of `perMs` starts much more than `max` (BullMQ's
 * own limiter counts fixed windows, which let a sliding one see up to twice the rate).
 */
import { Queue, Worker } from 'bullmq';
import type { Rate } from '../model/agent-type.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { OutcomeBatcher } from '../breaker/batcher.ts';
import { SharedBreaker, type Admission } from '../breaker/breaker.ts';
import type { BreakerPolicy } from '../model/breaker-policy.ts';
import type { BreakerState } from '../model/breaker-state.ts';
import { BreakerWatch } from '../breaker/watch.ts';
import type { Logger } from '../config/logger.ts';
import { poolBreakerName, queueName, type PoolRef } from '../model/names.ts';
import type { PoolOutcome } from './processor.ts';

/** Outcomes go to the pool breaker in one call per this many ms. */
const BREAKER_FLUSH_MS = 100;
/** A probe permit outlives a dead holder by at most this long. */
const PROBE_PERMIT_MS = 60_000;
/** When the probe budget is taken, the pool waits this long before asking again. */
const DENIED_RETRY_MS = 250;

export interface PoolGateOptions {
  redis: RedisConnection;
  subscriber: RedisConnection;
  prefix: string;
  ref: PoolRef;
  policy: BreakerPolicy;
  log: Logger;
  /** Called when the pool breaker changes state, and when an OPEN one starts admitting probes. */
  onChange(): void;
  /** The type's rate per pool, if it has one. */
  rate?: Rate;
}

export class PoolGate {
  readonly #o: PoolGateOptions;
  readonly #breaker: SharedBreaker;
  readonly #watch: BreakerWatch;
  readonly #batcher: OutcomeBatcher;
  /** The pool's queue, for BullMQ's queue-wide rate limit while probes are taken. */
  readonly #queue: Queue;
  readonly #named = new Map<string, SharedBreaker>();
  /** The type's rate per pool as the bucket script takes it (key, ms per task, burst), once. */
  readonly #rate: { key: string; per: string; burst: number } | undefined;
  #halfOpenTimer: NodeJS.Timeout | undefined;

  constructor(o: PoolGateOptions) {
    this.#o = o;
    this.#breaker = new SharedBreaker(o.redis, o.prefix, poolBreakerName(o.ref), o.policy);
    this.#watch = new BreakerWatch(o.redis, o.subscriber, o.prefix, () => o.policy, 1000, [this.#breaker.name]);
    this.#watch.on('change', (e) => {
      if (e.name !== this.#breaker.name) return;
      o.log[e.state === 'OPEN' ? 'warn' : 'info']({ breaker: e.name, state: e.state, trips: e.trips }, `pool breaker ${e.state}`);
      o.onChange();
    });
    this.#batcher = new OutcomeBatcher(this.#breaker, BREAKER_FLUSH_MS, () => undefined, (err) =>
      o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not report outcomes to the breaker'),
    );
    this.#queue = new Queue(queueName(o.ref), { connection: o.redis, prefix: o.prefix });
    this.#queue.on('error', () => undefined);
    const rate = o.rate;
    this.#rate = rate && { key: keys(o.prefix).poolRate(o.ref), per: (rate.perMs / rate.max).toFixed(6), burst: Math.max(1, Math.ceil(rate.max / 10)) };
  }

  start(): Promise<void> {
    return this.#watch.start();
  }

  get state(): BreakerState {
    return this.#watch.state(this.#breaker.name);
  }

  /** True while the pool's breaker is OPEN and not yet admitting probes; schedules onChange for then. */
  holds(): boolean {
    const at = this.#watch.heldUntil(this.#breaker.name);
    clearTimeout(this.#halfOpenTimer);
    if (at === undefined) return false;
    this.#halfOpenTimer = setTimeout(() => this.#o.onChange(), at - Date.now() + 10);
    this.#halfOpenTimer.unref();
    return true;
  }

  /**
   * A token of the pool's rate (none to take without one). Without a token the task goes back to
   * waiting, its attempt unspent (BullMQ's RateLimitError), and this agent waits until the next token
   * is due (the queue's limiter key, which the worker that throws reads).
   */
  async takeRate(): Promise<void> {
    const rate = this.#rate;
    if (!rate) return;
    const [admitted, waitMs] = await scripts.rateLimit.run(this.#o.redis, [rate.key], [rate.per, rate.burst, 1]);
    if (admitted === 1) return;
    await this.#queue.rateLimit(Math.max(1, waitMs));
    throw Worker.RateLimitError();
  }

  /** CLOSED (as far as this process knows): go, without a Redis call. Otherwise ask the breaker. */
  admit(jobId: string): Admission | Promise<Admission> {
    if (this.state === 'CLOSED') return 'CLOSED';
    return this.#breaker.acquire(jobId, PROBE_PERMIT_MS).then(async (admission) => {
      if (admission === 'DENIED') {
        // Hold the whole pool queue until probes may run (BullMQ's rate limit, shared by its agents).
        const at = this.#watch.halfOpenAt(this.#breaker.name);
        await this.#queue.rateLimit(Math.max(at ? at - Date.now() : 0, DENIED_RETRY_MS));
      }
      return admission;
    });
  }

  settled(jobId: string, admission: Admission, outcome: PoolOutcome): void {
    if (admission === 'PROBE') {
      // A fatal verdict still shows the pool works: it counts as a passed probe.
      void this.#breaker.probeResult(jobId, outcome !== 'failure').catch((err: unknown) => this.#o.log.warn({ err }, 'could not report a probe'));
    } else if (outcome !== 'neutral') {
      this.#batcher.record(outcome === 'success');
    }
  }

  /** A breaker shared by every agent, for a downstream a handler names. */
  named(name: string): SharedBreaker {
    let b = this.#named.get(name);
    if (!b) this.#named.set(name, (b = new SharedBreaker(this.#o.redis, this.#o.prefix, `custom:${name}`, this.#o.policy)));
    return b;
  }

  /** Stops re-checks; outcomes not yet reported are sent first. */
  async stop(): Promise<void> {
    clearTimeout(this.#halfOpenTimer);
    await this.#batcher.flush().catch(() => undefined);
    await Promise.all([this.#watch.stop(), this.#queue.close()]);
  }
}
