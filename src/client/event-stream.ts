/**
 * GET /v1/events for the typed client: Server-Sent Events parsed with eventsource-parser, reconnecting
 * after a dropped connection with the last event id it saw (the API resumes after it, each event once,
 * within its retention), until the caller stops iterating or aborts.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { SwitchyardEvent } from '../events/event-log.ts';

/** What GET /v1/events takes: only task events of `type`, only the events of run `run`, of task `task`. */
export interface EventFilter {
  type?: string;
  run?: string;
  task?: string;
}

/** An event with its id (resume after it with `lastEventId`); or a gap: events after `after` were dropped by the retention, read the state again. */
export type StreamedEvent = { id: string; event: SwitchyardEvent } | { gap: { after?: string; detail: string } };

export interface EventStreamOptions {
  /** Resume after this event id. */
  lastEventId?: string;
  signal?: AbortSignal;
  /** Called each time the stream is open (the server listens from then on), after a reconnect too. */
  onOpen?: () => void;
  /** Wait before reconnecting (default: what the server says, 1 s). */
  retryMs?: number;
}

/** Opens one connection: the response, or throws with what the server answered (the caller makes it an ApiError). */
export type EventConnector = (lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>;

/** Events until aborted; reconnects with the last id after a dropped connection. A refused request (4xx) throws. */
export async function* eventStream(connect: EventConnector, o: EventStreamOptions = {}): AsyncGenerator<StreamedEvent> {
  let last = o.lastEventId;
  let retryMs = o.retryMs ?? 1000;
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    while (!abort.signal.aborted) {
      let res: Response | undefined;
      try {
        res = await connect(last, abort.signal);
      } catch (err) {
        if (abort.signal.aborted) return;
        if ((err as { status?: number }).status !== undefined && (err as { status: number }).status >= 400 && (err as { status: number }).status < 500) throw err;
      }
      if (res?.body) {
        o.onOpen?.();
        try {
          const messages = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream({ onRetry: (ms) => (retryMs = o.retryMs ?? ms) }));
          for await (const m of messages) {
            if (m.event === 'gap') yield { gap: JSON.parse(m.data) as { after?: string; detail: string } };
            else if (m.id) {
              last = m.id;
              yield { id: m.id, event: JSON.parse(m.data) as SwitchyardEvent };
            }
          }
        } catch {
          // dropped: reconnect below
        }
      }
      if (abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, retryMs));
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    abort.abort();
  }
}
