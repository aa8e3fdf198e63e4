/**
 * A loop over a set of things due at given times, kept in Redis (schedule ticks, sleeping workflow
 * nodes): it sleeps until the earliest is due (at most a second, so it sees what other processes
 * add), claims what is due in one call (each item goes to one process, for a lease: a process that
 * dies mid-item loses it when the lease ends, and another claims it again), and handles each. Every
 * process may run one. Handling must be idempotent (an item can be handled twice across a lease
 * change). Between items it costs one read a second per process.
 */
import type { Logger } from '../config/logger.ts';

export interface DueSource<T> {
  /** Claims up to `batch` items due at `now`, each for `leaseMs`. */
  claim(now: number, leaseMs: number, batch: number): Promise<T[]>;
  /** When the earliest item is due (ms), or undefined when there is none. */
  earliest(): Promise<number | undefined>;
}

export interface DueLoopOptions<T> {
  /** For logs: what is due (`schedule timer`, `workflow sleeps`). */
  name: string;
  source: DueSource<T>;
  handle(item: T): Promise<void>;
  /** How long a claimed item is this process's. */
  leaseMs: number;
  log: Logger;
}

/** The longest the loop sleeps: an item added by another process is seen within this. */
export const MAX_SLEEP_MS = 1000;
const BATCH = 100;

export class DueLoop<T> {
  readonly #o: DueLoopOptions<T>;
  #stopping = false;
  #sleep: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  #loop: Promise<void> | undefined;
  #lastError = 0;

  constructor(o: DueLoopOptions<T>) {
    this.#o = o;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Looks for due items now (one was just written). */
  kick(): void {
    this.#sleep?.wake();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.kick();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      let pause = MAX_SLEEP_MS;
      try {
        const claimed = await this.#o.source.claim(Date.now(), this.#o.leaseMs, BATCH);
        const handled = await Promise.allSettled(claimed.map((c) => this.#o.handle(c)));
        const failed = handled.find((f) => f.status === 'rejected');
        if (failed) throw failed.reason;
        if (claimed.length === BATCH) continue;
        const earliest = await this.#o.source.earliest();
        if (earliest !== undefined) pause = Math.min(MAX_SLEEP_MS, Math.max(0, earliest - Date.now()));
      } catch (err) {
        if (Date.now() - this.#lastError > 10_000) this.#o.log.warn({ err: err instanceof Error ? err.message : String(err) }, `${this.#o.name}: Redis did not answer; retrying`);
        this.#lastError = Date.now();
      }
      await this.#pause(pause);
    }
  }

  #pause(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleep = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleep = { timer, wake };
    });
  }
}
