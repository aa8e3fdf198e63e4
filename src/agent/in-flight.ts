/**
 * The attempts an agent is running, with their deadlines and abort paths. Cheaper per task than
 * BullMQ's per-job AbortController plus a timer per attempt: the handler's signal is created only if
 * the handler reads it, timeouts are found by one sweeping timer, and cancel/shutdown reach an
 * attempt through this table.
 */
export class Attempt {
  /** Why it was aborted (TIMEOUT, SHUTDOWN, a cancel reason), once it was. */
  reason: unknown;
  aborted = false;
  #controller: AbortController | undefined;
  #reject: ((err: Error) => void) | undefined;

  constructor(
    readonly id: string,
    readonly deadline: number,
  ) {}

  /** The handler's AbortSignal, created on first read. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(new Error('attempt aborted'));
  }

  /** Settles with `pending`, or rejects as soon as the attempt is aborted (a handler may ignore its signal). */
  race<T>(pending: PromiseLike<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.aborted) return reject(new Error('attempt aborted'));
      this.#reject = reject;
      pending.then(resolve, reject);
    });
  }
}

/** Cancels kept for tasks fetched but not started (a batched worker's local queue); the oldest go past this many. */
const EARLY_CANCELS_KEPT = 1000;

export class InFlight {
  readonly #attempts = new Map<string, Attempt>();
  /** Cancels of tasks not started yet: their attempt is aborted as it begins, before the handler runs. */
  readonly #early = new Map<string, unknown>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutReason: unknown,
    /** How often deadlines are checked: timeouts fire within this much of timeoutMs. */
    private readonly sweepMs = 50,
  ) {}

  get size(): number {
    return this.#attempts.size;
  }

  begin(id: string, timeoutMs: number, now = Date.now()): Attempt {
    const attempt = new Attempt(id, now + timeoutMs);
    this.#attempts.set(id, attempt);
    if (this.#early.has(id)) {
      attempt.abort(this.#early.get(id));
      this.#early.delete(id);
    }
    if (!this.#sweeper) {
      this.#sweeper = setInterval(() => this.#sweep(), this.sweepMs);
      this.#sweeper.unref();
    }
    return attempt;
  }

  end(attempt: Attempt): void {
    if (this.#attempts.get(attempt.id) === attempt) this.#attempts.delete(attempt.id);
    if (this.#attempts.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Aborts one attempt; false when this agent is not running it. */
  abort(id: string, reason: unknown): boolean {
    const attempt = this.#attempts.get(id);
    attempt?.abort(reason);
    return attempt !== undefined;
  }

  /** A cancel of a task fetched and not started: its attempt ends as it begins (see begin). */
  abortBeforeStart(id: string, reason: unknown): void {
    this.#early.set(id, reason);
    if (this.#early.size > EARLY_CANCELS_KEPT) this.#early.delete(this.#early.keys().next().value!);
  }

  abortAll(reason: unknown): void {
    for (const a of this.#attempts.values()) a.abort(reason);
  }

  #sweep(now = Date.now()): void {
    for (const a of this.#attempts.values()) if (!a.aborted && a.deadline <= now) a.abort(this.timeoutReason);
  }
}
