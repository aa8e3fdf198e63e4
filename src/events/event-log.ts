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
import { parseQueueName } from '../model/names.ts';

/** The kinds of events and what each carries. */
export type SwitchyardEvent =
  | { kind: 'task'; task: string; type: string; pool?: string; state: TaskEventState; attempt?: number; run?: string; node?: string; error?: string; at: number }
  | { kind: 'node'; run: string; node: string; state: 'done' | 'dead' | 'skipped'; at: number }
  | { kind: 'run'; run: string; name?: string; state: string; reason?: string; at: number };

/** waiting: enqueued; active: an attempt started; failed: an attempt failed and the task will retry; dead, completed, cancelled: final. */
export const TASK_EVENT_STATES = ['waiting', 'active', 'failed', 'completed', 'dead', 'cancelled'] as const;
export type TaskEventState = (typeof TASK_EVENT_STATES)[number];

/** An event as read back: the stream entry id (the SSE `id`) and the event. */
export interface LoggedEvent {
  id: string;
  event: SwitchyardEvent;
}

/** Plain-object key/value pairs of a stream entry (['e', json]) into events, skipping any that do not parse. */
export function parseEntries(entries: ReadonlyArray<[string, string[]]>): LoggedEvent[] {
  const out: LoggedEvent[] = [];
  for (const [id, fields] of entries) {
    const json = fields[fields.indexOf('e') + 1];
    if (!json) continue;
    try {
      out.push({ id, event: JSON.parse(json) as SwitchyardEvent });
    } catch {
      // not an event of ours
    }
  }
  return out;
}

export class EventLog {
  readonly key: string;

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

  /** Appends events (one pipelined XADD each, trimming what is older than the retention); never throws. */
  append(...events: SwitchyardEvent[]): void {
    if (!this.enabled || events.length === 0) return;
    const minId = String(Date.now() - this.retentionMs);
    const add = (e: SwitchyardEvent) => this.redis.xadd(this.key, 'MINID', '~', minId, '*', 'e', JSON.stringify(e));
    if (events.length === 1) {
      add(events[0]!).catch((err: Error) => this.onError(err));
      return;
    }
    const p = this.redis.pipeline();
    for (const e of events) p.xadd(this.key, 'MINID', '~', minId, '*', 'e', JSON.stringify(e));
    p.exec().catch((err: Error) => this.onError(err));
  }

  /** Up to `count` events after entry `after` ('-' for the oldest kept). */
  async after(after: string, count: number): Promise<LoggedEvent[]> {
    const start = after === '-' ? '-' : `(${after}`;
    return parseEntries((await this.redis.xrange(this.key, start, '+', 'COUNT', count)) as Array<[string, string[]]>);
  }

  /** The id of the oldest entry kept, or undefined when the log is empty. */
  async oldest(): Promise<string | undefined> {
    const first = (await this.redis.xrange(this.key, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
    return first[0]?.[0];
  }
}

/** The `waiting` events of tasks just written to a pool queue (`{<type>.<pool>}`). */
export function waitingEvents(queue: string, ids: readonly string[], at = Date.now()): SwitchyardEvent[] {
  const ref = parseQueueName(queue);
  return ids.map((task) => ({ kind: 'task', task, type: ref?.type ?? queue, ...(ref ? { pool: ref.pool } : {}), state: 'waiting', at }));
}
