/**
 * GET /v1/events: Server-Sent Events of task, node and run state changes from the event log
 * (src/events/), filtered by `type`, `run` and `task`. Each event's `id` is its place in the log; a client
 * that reconnects with `Last-Event-ID` (or `?lastEventId=`, which wins over the header) gets every event after it that the log
 * still keeps (SWITCHYARD_EVENTS_RETENTION_MS), then the live ones, each once; when the log no longer
 * holds all of them, a `gap` event says so first. A comment every 15 s keeps proxies from closing it.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { EventFeed } from '../../events/event-feed.ts';
import { EVENT_ID, type LoggedEvent, type SwitchyardEvent } from '../../events/event-log.ts';
import { parseOrThrow } from '../../model/validation.ts';
import { SwitchyardError } from '../../model/errors.ts';

const KEEP_ALIVE_MS = 15_000;

export const eventsQuerySchema = z.strictObject({
  type: z.string().max(64).optional().describe('only task events of this agent type'),
  run: z.string().max(100).optional().describe("only this workflow run's events: its own, its nodes', its tasks'"),
  task: z.string().max(200).optional().describe("only this task's events"),
  lastEventId: z.string().regex(EVENT_ID, 'an event id, <ms>-<seq>.<index>').optional().describe('resume after this event (as the Last-Event-ID header)'),
});

export type EventsQuery = z.output<typeof eventsQuerySchema>;

/** Whether an event passes the query's filters. */
export function eventMatches(e: SwitchyardEvent, q: EventsQuery): boolean {
  if (q.type !== undefined && (e.kind !== 'task' || e.type !== q.type)) return false;
  if (q.task !== undefined && (e.kind !== 'task' || e.task !== q.task)) return false;
  if (q.run !== undefined && e.run !== q.run) return false;
  return true;
}

const frame = (e: LoggedEvent) => `id: ${e.id}\nevent: ${e.event.kind}\ndata: ${JSON.stringify(e.event)}\n\n`;

/** Streams events until the client goes away; throws (a problem+json answer) before the stream starts. */
export async function streamEvents(feed: EventFeed | undefined, req: Request, res: Response): Promise<void> {
  if (!feed) throw new SwitchyardError('NOT_FOUND', 'the event log is off (SWITCHYARD_EVENTS_RETENTION_MS=0): poll GET /v1/tasks/:id or /v1/workflows/:id instead');
  const header = req.get('last-event-id');
  const q = parseOrThrow(eventsQuerySchema, header !== undefined && req.query.lastEventId === undefined ? { ...req.query, lastEventId: header } : req.query, 'event query');
  const write = (events: readonly LoggedEvent[]) => {
    const out = events.filter((e) => eventMatches(e.event, q)).map(frame).join('');
    if (out) res.write(out);
  };
  // Listen for the client leaving before the subscription's first reads: one that leaves meanwhile
  // must not leave a subscription behind.
  let gone = false;
  const left = new Promise<void>((resolve) => res.on('close', () => ((gone = true), resolve())));
  const sub = await feed.subscribe(write, q.lastEventId);
  if (gone) return sub.close();
  res.status(200).set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  res.write('retry: 1000\n\n');
  if (sub.gap) res.write(`event: gap\ndata: ${JSON.stringify({ after: q.lastEventId, detail: 'events after this id were dropped by the retention window; read the state you need again' })}\n\n`);
  write(sub.backlog);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  await Promise.race([left, sub.ended]);
  clearInterval(keepAlive);
  sub.close();
  res.end();
}
