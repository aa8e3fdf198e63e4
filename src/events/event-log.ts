/**
 * The event log: task and run state changes in one Redis stream (`{events}:log`), kept for a retention
 * window (each append trims entries older than it, approximately: XADD MINID ~), read by GET
 * /v1/events (event-feed.ts) and resumed from an entry id (Last-Event-ID). Appends are not awaited by
 * the paths that make the changes and never fail them: an event lost to a Redis error or a crash
 * between a change and its event is not retried (the change itself is what is durable; a client that
 * needs certainty reads the state, as the typed client's wait does after each event).
 */
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import type { Job } from 'bullmq';
import { parseQueueName, type PoolRef } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { TaskProgress } from '../model/task-progress.ts';

/** The kinds of events and what each carries. */
export type SwitchyardEvent =
  | { kind: 'task'; task: string; type: string; pool?: string; state: TaskEventState; attempt?: number; run?: string; node?: string; error?: string; progress?: TaskProgress; at: number }
  | { kind: 'node'; run: string; node: string; state: 'done' | 'dead' | 'skipped'; at: number }
  | { kind: 'run'; run: string; name?: string; state: string; reason?: string; at: number };

/**
 * waiting: enqueued; active: an attempt started; progress: the handler reported progress (ctx.progress;
 * the value rides along when its JSON is at most PROGRESS_EVENT_BYTES); failed: an attempt failed and the
 * task will retry; dead, completed, cancelled: final.
 */
export const TASK_EVENT_STATES = ['waiting', 'active', 'progress', 'failed', 'completed', 'dead', 'cancelled'] as const;

/** The largest progress value (as JSON) a progress event carries; a larger one is read from the task. */
export const PROGRESS_EVENT_BYTES = 1024;
export type TaskEventState = (typeof TASK_EVENT_STATES)[number];

/** An event as read back: its id (the SSE `id`: `<stream entry id>.<index in the entry>`) and the event. */
export interface LoggedEvent {
  id: string;
  event: SwitchyardEvent;
}

/** An event id: a stream entry id and the event's place in the entry (`1796316309021-0.3`); an entry id alone stands for all of it. */
export const EVENT_ID = /^\d{1,15}-\d{1,15}(\.\d{1,6})?$/;

/** An event id's parts: its entry, and its index in it (undefined: the whole entry). */
export function eventIdParts(id: string): { entry: string; index?: number } {
  const dot = id.indexOf('.');
  return dot < 0 ? { entry: id } : { entry: id.slice(0, dot), index: Number(id.slice(dot + 1)) };
}

/** Whether event id `a` comes after `b` (entries by their stream order, then index; an entry alone is its last event). */
export function idAfter(a: string, b: string): boolean {
  const pa = eventIdParts(a);
  const pb = eventIdParts(b);
  const [am, as] = pa.entry.split('-').map(Number) as [number, number];
  const [bm, bs] = pb.entry.split('-').map(Number) as [number, number];
  if (am !== bm || as !== bs) return am > bm || (am === bm && as > bs);
  return (pa.index ?? Infinity) > (pb.index ?? Infinity);
}

/** Stream entries (each field `e`: a JSON array of events, or one event) into events, skipping what does not parse. */
export function parseEntries(entries: ReadonlyArray<[string, string[]]>): LoggedEvent[] {
  const out: LoggedEvent[] = [];
  for (const [id, fields] of entries) {
    const json = fields[fields.indexOf('e') + 1];
    if (!json) continue;
    try {
      const parsed = JSON.parse(json) as SwitchyardEvent | SwitchyardEvent[];
      (Array.isArray(parsed) ? parsed : [parsed]).forEach((event, i) => out.push({ id: `${id}.${i}`, event }));
    } catch {
      // not an entry of ours
    }
  }
  return out;
}

/** How long events wait to be written together, and how many at most go in one entry. */
const FLUSH_MS = 5;
const MAX_BATCH = 500;

export class EventLog {
  readonly key: string;
  #batch: SwitchyardEvent[] = [];
  #timer: NodeJS.Timeout | undefined;

  /** `retentionMs` 0: a log that records nothing. */
  constructor(
    private readonly redis: RedisConnection,
    prefix: string,
    readonly retentionMs: number,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.key = keys(prefix).events;
  }

  get enabled(): boolean {
    return this.retentionMs > 0;
  }

  /**
   * Appends events: they are written together with the others of the next few milliseconds, as one
   * stream entry (one XADD for many events, trimming what is older than the retention); never throws.
   */
  append(...events: SwitchyardEvent[]): void {
    if (!this.enabled || events.length === 0) return;
    this.#batch.push(...events);
    if (this.#batch.length >= MAX_BATCH) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** Writes what is waiting now (on close, so nothing appended is dropped). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    const minId = String(Date.now() - this.retentionMs);
    await this.redis.xadd(this.key, 'MINID', '~', minId, '*', 'e', JSON.stringify(batch)).then(
      () => undefined,
      (err: Error) => this.onError(err),
    );
  }

  /**
   * The events of up to `count` entries after event `after` ('-' for the oldest kept), and the id to
   * read on from (absent when the log ends there).
   */
  async after(after: string, count: number): Promise<{ events: LoggedEvent[]; next?: string }> {
    const { entry, index } = eventIdParts(after);
    const start = after === '-' ? '-' : index === undefined ? `(${entry}` : entry;
    const entries = (await this.redis.xrange(this.key, start, '+', 'COUNT', count)) as Array<[string, string[]]>;
    const events = parseEntries(entries).filter((e) => after === '-' || idAfter(e.id, after));
    return { events, ...(entries.length === count ? { next: entries[entries.length - 1]![0] } : {}) };
  }

  /** The id of the oldest entry kept, or undefined when the log is empty. */
  async oldest(): Promise<string | undefined> {
    const first = (await this.redis.xrange(this.key, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
    return first[0]?.[0];
  }
}

/** The `waiting` events of tasks just written to a pool queue (`{<type>.<pool>}`). */
/** A task's event as its agent (or the lease desk) tells it: the job's run and node ride along for a workflow's task. */
export function taskEvent(job: Job<TaskEnvelope>, ref: PoolRef, state: TaskEventState, more: { attempt?: number; error?: string; progress?: TaskProgress } = {}): SwitchyardEvent {
  const w = job.data?.workflow;
  return { kind: 'task', task: job.id ?? '', type: ref.type, pool: ref.pool, state, ...more, ...(w ? { run: w.run, node: w.node } : {}), at: Date.now() };
}

export function waitingEvents(queue: string, ids: readonly string[], at = Date.now()): SwitchyardEvent[] {
  const ref = parseQueueName(queue);
  return ids.map((task) => ({ kind: 'task', task, type: ref?.type ?? queue, ...(ref ? { pool: ref.pool } : {}), state: 'waiting', at }));
}
