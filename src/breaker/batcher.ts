/**
 * Agents report task outcomes to their pool's breaker in batches: counts pile up locally and go
 * to Redis in one script call every `flushMs` (100 ms), so the breaker costs no Redis command per
 * task and still reacts within about a tenth of a second.
 */
import type { SharedBreaker } from './breaker.ts';
import type { BreakerState } from '../model/breaker-state.ts';

export class OutcomeBatcher {
  #successes = 0;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly breaker: SharedBreaker,
    private readonly flushMs: number,
    private readonly onState: (state: BreakerState) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  record(ok: boolean): void {
    if (ok) this.#successes++;
    else this.#failures++;
    this.#timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const s = this.#successes;
    const f = this.#failures;
    if (s + f === 0) return this.#flushing;
    this.#successes = 0;
    this.#failures = 0;
    this.#flushing = this.#flushing.then(() => this.breaker.record(s, f).then(this.onState, this.onError));
    return this.#flushing;
  }
}
