/**
 * Every process's view of the breakers: updated at once from the events channel (pub/sub) and
 * re-read every `refreshMs` as a safety net (a missed message, a reconnect), so routers and agents
 * act on a change within about 100 ms without a Redis call per task.
 */
import { EventEmitter } from 'node:events';
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { readBreaker } from './breaker.ts';
import type { BreakerPolicy } from '../model/breaker-policy.ts';
import type { BreakerEvent, BreakerState, BreakerView } from '../model/breaker-state.ts';

export class BreakerWatch extends EventEmitter<{ change: [BreakerEvent] }> {
  readonly #states = new Map<string, { state: BreakerState; openedAt?: number; trips: number }>();
  readonly #k: ReturnType<typeof keys>['breaker'];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisConnection,
    /** A connection in subscriber mode; it may carry other subscriptions too; its owner closes it. */
    private readonly subscriber: RedisConnection,
    prefix: string,
    private readonly policyOf: (name: string) => BreakerPolicy,
    private readonly refreshMs = 1000,
    /** Watch only these breakers (an agent needs its pool's); all when undefined. */
    private readonly only?: readonly string[],
  ) {
    super();
    this.#k = keys(prefix).breaker;
  }

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#k.events) return;
      try {
        const event = JSON.parse(message) as BreakerEvent;
        if (!this.only || this.only.includes(event.name)) this.#apply(event);
      } catch {
        /* not ours */
      }
    });
    await this.subscriber.subscribe(this.#k.events);
    await this.refresh();
    const loop = () => {
      this.#timer = setTimeout(() => void this.refresh().catch(() => undefined).finally(loop), this.refreshMs);
      this.#timer.unref();
    };
    loop();
  }

  #apply(e: BreakerEvent): void {
    const before = this.#states.get(e.name);
    this.#states.set(e.name, { state: e.state, trips: e.trips, ...(e.state === 'OPEN' ? { openedAt: e.at } : {}) });
    // A re-trip seen without the messages between (lost) stays OPEN with a later openedAt: the trip count tells.
    if (before?.state !== e.state || before.trips !== e.trips) this.emit('change', e);
  }

  /** Re-reads every known breaker. */
  async refresh(): Promise<BreakerView[]> {
    const names = this.only ? [...this.only] : await this.redis.smembers(this.#k.index);
    const views = await Promise.all(names.map((n) => readBreaker(this.redis, this.#k, n, this.policyOf(n))));
    for (const v of views) {
      const openedAt = v.openedAt ? Date.parse(v.openedAt) : undefined;
      const before = this.#states.get(v.name);
      this.#states.set(v.name, { state: v.state, trips: v.trips, ...(openedAt ? { openedAt } : {}) });
      if (before && (before.state !== v.state || before.trips !== v.trips)) this.emit('change', { name: v.name, state: v.state, at: Date.now(), trips: v.trips });
    }
    return views;
  }

  /** The cached state; a breaker never heard of is CLOSED. */
  state(name: string): BreakerState {
    return this.#states.get(name)?.state ?? 'CLOSED';
  }

  /** When an OPEN breaker admits probes (ms since epoch), or undefined. */
  halfOpenAt(name: string): number | undefined {
    const s = this.#states.get(name);
    return s?.state === 'OPEN' && s.openedAt !== undefined ? s.openedAt + this.policyOf(name).openMs : undefined;
  }

  /** While the breaker is OPEN and admits no probe yet: when it starts admitting them (ms since epoch); else undefined. */
  heldUntil(name: string, now = Date.now()): number | undefined {
    const at = this.halfOpenAt(name);
    return at !== undefined && at > now ? at : undefined;
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    await this.subscriber.unsubscribe(this.#k.events).catch(() => undefined);
  }

  /** Every breaker's cached state, for listings. */
  states(): Map<string, BreakerState> {
    return new Map([...this.#states].map(([name, s]) => [name, s.state]));
  }
}
