/**
 * The live side of the event log for one API process: a single tail of the stream (XREAD BLOCK on a
 * connection of its own) while anyone listens, fanned out to every listener in memory, so a thousand
 * SSE clients cost one blocking read. A listener that resumes (Last-Event-ID) first reads the entries
 * after its id from the log, then the live ones after the last it got: each entry once, in order.
 */
import type { RedisConnection } from '../redis/connection.ts';
import { eventIdParts, idAfter, parseEntries, type EventLog, type LoggedEvent } from './event-log.ts';

type Listener = (events: readonly LoggedEvent[]) => void;

/** What a subscription reads first: entries after `resumeAfter` from the log, and whether some were trimmed since. */
export interface Subscription {
  /** Entries after the resume id kept by the log, in order (empty without a resume id). */
  backlog: LoggedEvent[];
  /** The log no longer holds every entry after the resume id (it was older than the retention). */
  gap: boolean;
  /** Stops the live delivery. */
  close(): void;
  /** Resolves when the feed stops (the process shuts down): end the stream. */
  ended: Promise<void>;
}

const READ_BLOCK_MS = 2000;
const READ_COUNT = 1000;
const BACKLOG_PAGE = 1000;
/** Most entries a resume reads from the log before it goes live (the rest: a gap). */
const BACKLOG_MAX = 100_000;

export class EventFeed {
  readonly #listeners = new Set<Listener>();
  #cursor: string | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  readonly #ended: Promise<void>;
  #end: () => void = () => undefined;

  constructor(
    private readonly log: EventLog,
    /** A connection for the blocking read alone. */
    private readonly blocking: RedisConnection,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.#ended = new Promise((resolve) => (this.#end = resolve));
  }

  /**
   * Listens for new entries (`live`), and reads the entries after `resumeAfter` from the log; live
   * entries the backlog already holds are not delivered twice. Resolves once the tail is reading, so
   * an entry written after it resolves is delivered.
   */
  async subscribe(live: Listener, resumeAfter?: string): Promise<Subscription> {
    let last = resumeAfter;
    let backlogDone = resumeAfter === undefined;
    const held: LoggedEvent[] = [];
    const listener: Listener = (events) => {
      if (!backlogDone) return void held.push(...events);
      const fresh = last === undefined ? events : events.filter((e) => idAfter(e.id, last!));
      if (fresh.length === 0) return;
      last = fresh[fresh.length - 1]!.id;
      live(fresh);
    };
    this.#listeners.add(listener);
    const close = () => void this.#listeners.delete(listener);
    try {
      await this.#tail();
      const backlog: LoggedEvent[] = [];
      let gap = false;
      if (resumeAfter !== undefined) {
        const oldest = await this.log.oldest();
        gap = oldest !== undefined && idAfter(oldest, eventIdParts(resumeAfter).entry) ? this.#trimmedSince(resumeAfter, oldest) : false;
        let from: string | undefined = resumeAfter;
        while (from !== undefined) {
          const page = await this.log.after(from, BACKLOG_PAGE);
          backlog.push(...page.events);
          if (page.events.length > 0) last = page.events[page.events.length - 1]!.id;
          from = page.next;
          if (backlog.length >= BACKLOG_MAX) {
            gap = true;
            break;
          }
        }
      }
      backlogDone = true;
      const pending = held.splice(0);
      // After the caller has written the backlog (it does so as soon as this resolves).
      if (pending.length > 0) setImmediate(() => listener(pending));
      return { backlog, gap, close, ended: this.#ended };
    } catch (err) {
      close();
      throw err;
    }
  }

  /** Whether entries between `after` and the oldest one kept were trimmed (an id older than the retention). */
  #trimmedSince(after: string, oldest: string): boolean {
    const ms = Number(eventIdParts(after).entry.split('-')[0]);
    if (ms === 0) return false; // `0-0`: everything the log keeps, no gap claimed
    return Number(oldest.split('-')[0]) > ms && Date.now() - ms > this.log.retentionMs;
  }

  /** Starts the tail if it is not running; resolves once its cursor is set. */
  async #tail(): Promise<void> {
    if (this.#loop) return;
    const newest = (await this.blocking.xrevrange(this.log.key, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    if (this.#loop) return;
    this.#cursor = newest[0]?.[0] ?? '0-0';
    this.#loop = this.#read();
  }

  /** Reads while anyone listens; the loop clears itself in the same tick it sees nobody (so a new listener starts a new one). */
  async #read(): Promise<void> {
    for (;;) {
      if (this.#stopped || this.#listeners.size === 0) {
        this.#loop = undefined;
        return;
      }
      try {
        const reply = (await this.blocking.xread('COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.log.key, this.#cursor!)) as Array<[string, Array<[string, string[]]>]> | null;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        this.#cursor = entries[entries.length - 1]![0];
        const events = parseEntries(entries);
        for (const l of [...this.#listeners]) l(events);
      } catch (err) {
        if (this.#stopped) return;
        this.onError(err as Error);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Listeners now (streams served). */
  get listening(): number {
    return this.#listeners.size;
  }

  /** Stops the tail (listeners get nothing more). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#end();
    this.#listeners.clear();
    this.blocking.disconnect();
    await this.#loop?.catch(() => undefined);
  }
}
