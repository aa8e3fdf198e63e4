/**
 * An agent's side of what its pool shares in Redis. The circuit breaker: admits each task (at no
 * Redis cost while the breaker is CLOSED, as a bounded probe while HALF_OPEN), reports outcomes in
 * batches, says when the agent should stop pulling (OPEN and not yet admitting probes), and holds the
 * breakers a handler names for its own downstreams (ctx.breaker). The type's rates (ratePerType,
 * ratePerPool, ratePerKey): a token from each bucket that applies (GCRA, src/redis/lua/rate-limit.lua,
 * on the server's clock, all or none in one call) before a task runs; bursts are a tenth of the rate,
 * so no window of `perMs` starts much more than `max` (BullMQ's own limiter counts fixed windows,
 * which let a sliding one see up to twice the rate). The pool's hold: a handler's RetryAfterError
 * stops every agent of the pool for the time it asked (a key with that TTL, and a message that
 * makes the others pause at once).
 */
import { Queue, Worker } from 'bullmq';
import type { LimitKind, Rate, TypeLimits } from '../model/agent-type.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { OutcomeBatcher } from '../breaker/batcher.ts';
import { SharedBreaker, type Admission } from '../breaker/breaker.ts';
import type { BreakerPolicy } from '../model/breaker-policy.ts';
import type { BreakerState } from '../model/breaker-state.ts';
import { BreakerWatch } from '../breaker/watch.ts';
import type { Logger } from '../config/logger.ts';
import { poolBreakerName, poolLabel, queueName, type PoolRef } from '../model/names.ts';
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
  /** Called when the pool breaker changes state, when an OPEN one starts admitting probes, and when the pool is held or let go. */
  onChange(): void;
  /** The type's limits (its rates). */
  limits?: TypeLimits;
  /** Told when a task is refused by a rate, or the pool held (the metric of limited tasks). */
  onLimited?: (kind: LimitKind) => void;
}

/** A rate as the bucket script takes it: ms per task and burst (a tenth of the rate, at least 1). */
const bucketArgs = (rate: Rate): [string, number] => [(rate.perMs / rate.max).toFixed(6), Math.max(1, Math.ceil(rate.max / 10))];

export class PoolGate {
  readonly #o: PoolGateOptions;
  readonly #breaker: SharedBreaker;
  readonly #watch: BreakerWatch;
  readonly #batcher: OutcomeBatcher;
  /** The pool's queue, for BullMQ's queue-wide rate limit while probes are taken. */
  readonly #queue: Queue;
  readonly #named = new Map<string, SharedBreaker>();
  /** The buckets every task of the pool takes from (type, pool): keys, script arguments and what each limits. */
  readonly #shared: { keys: string[]; args: Array<string | number>; kinds: LimitKind[] };
  /** The bucket of a concurrency key, by key, when the type has a ratePerKey. */
  readonly #perKey: { key: (k: string) => string; reservations: string; args: [string, number] } | undefined;
  readonly #holdKey: string;
  readonly #holdChannel: string;
  readonly #onHold: (channel: string, message: string) => void;
  /** When the pool's hold ends (ms), as far as this agent knows. */
  #heldUntil = 0;
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
    const k = keys(o.prefix);
    const buckets = k.rateBuckets(o.ref.type);
    const { ratePerType, ratePerPool, ratePerKey } = o.limits ?? {};
    this.#shared = { keys: [], args: [], kinds: [] };
    for (const [rate, key, kind] of [[ratePerType, buckets.type, 'type-rate'], [ratePerPool, buckets.pool(o.ref.pool), 'pool-rate']] as const) {
      if (!rate) continue;
      this.#shared.keys.push(key);
      this.#shared.args.push(...bucketArgs(rate));
      this.#shared.kinds.push(kind);
    }
    this.#perKey = ratePerKey && { key: buckets.key, reservations: buckets.reservations, args: bucketArgs(ratePerKey) };
    this.#holdKey = k.poolHold(o.ref);
    this.#holdChannel = k.poolHolds;
    const label = poolLabel(o.ref);
    this.#onHold = (channel, message) => {
      if (channel !== this.#holdChannel) return;
      const [pool, until] = message.split(' ');
      if (pool === label) this.#holdUntil(Number(until));
    };
  }

  async start(): Promise<void> {
    await this.#watch.start();
    this.#o.subscriber.on('message', this.#onHold);
    await this.#o.subscriber.subscribe(this.#holdChannel);
    const left = await this.#o.redis.pttl(this.#holdKey);
    if (left > 0) this.#holdUntil(Date.now() + left);
  }

  /** Whether the type has a rate a task takes a token from (a key's only for tasks with a concurrencyKey). */
  get rated(): boolean {
    return this.#shared.keys.length > 0 || this.#perKey !== undefined;
  }

  get state(): BreakerState {
    return this.#watch.state(this.#breaker.name);
  }

  /**
   * True while the pool's breaker is OPEN and not yet admitting probes, or while a handler's
   * RetryAfterError holds the pool; schedules onChange for when that ends.
   */
  holds(): boolean {
    const breakerAt = this.#watch.heldUntil(this.#breaker.name);
    const at = this.#heldUntil > Date.now() ? Math.max(this.#heldUntil, breakerAt ?? 0) : breakerAt;
    clearTimeout(this.#halfOpenTimer);
    if (at === undefined) return false;
    this.#halfOpenTimer = setTimeout(() => this.#o.onChange(), at - Date.now() + 10);
    this.#halfOpenTimer.unref();
    return true;
  }

  /**
   * A token of each of the type's rates that applies to a task (its type's, its pool's, its key's):
   * all or none. Returns 0 when it may start. Without a type or pool token the task goes back to
   * waiting, its attempt unspent (BullMQ's RateLimitError), and this agent waits until the next token
   * is due (the queue's limiter key, which the worker that throws reads). Without its key's token,
   * the task gets the key's next one reserved and this returns how long until then: the caller puts
   * the task off until it, and the pool goes on with others.
   */
  async takeRate(taskId: string, concurrencyKey?: string): Promise<number> {
    const { keys: shared, args, kinds } = this.#shared;
    const perKey = concurrencyKey !== undefined ? this.#perKey : undefined;
    if (shared.length === 0 && !perKey) return 0;
    const bucketKeys = perKey ? [...shared, perKey.key(concurrencyKey!), perKey.reservations] : shared;
    const [admitted, waitMs, which] = await scripts.rateTake.run(this.#o.redis, bucketKeys, [shared.length, taskId, ...args, ...(perKey ? perKey.args : [])]);
    if (admitted === 1) return 0;
    const kind = kinds[(which ?? 1) - 1] ?? 'key-rate';
    this.#o.onLimited?.(kind);
    if (kind === 'key-rate') return Math.max(1, waitMs ?? 1);
    await this.#queue.rateLimit(Math.max(1, waitMs ?? 1));
    throw Worker.RateLimitError();
  }

  /**
   * A handler said its downstream is rate limited (RetryAfterError): every agent of the pool starts
   * nothing for `ms` (a longer hold already there is kept).
   */
  async hold(ms: number): Promise<void> {
    const until = Date.now() + ms;
    this.#o.onLimited?.('retry-after');
    this.#holdUntil(until);
    const left = await this.#o.redis.pttl(this.#holdKey);
    if (left >= ms) return;
    await this.#o.redis.set(this.#holdKey, String(until), 'PX', ms);
    await this.#o.redis.publish(this.#holdChannel, `${poolLabel(this.#o.ref)} ${until}`);
  }

  #holdUntil(until: number): void {
    if (until <= this.#heldUntil) return;
    this.#heldUntil = until;
    this.#o.log.warn({ heldForMs: until - Date.now() }, 'pool held: a handler was told to retry later (RetryAfterError); starting nothing until then');
    this.#o.onChange();
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
    this.#o.subscriber.off('message', this.#onHold);
    await this.#batcher.flush().catch(() => undefined);
    await Promise.all([this.#watch.stop(), this.#queue.close()]);
  }
}
