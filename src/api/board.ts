/**
 * Bull Board at /admin/queues, showing workflow runs and every pool queue; pools created later appear
 * as they are found. Mounted behind Switchyard's own edge: its bodies are read by our parser (our
 * limit, problem+json errors), its page loads nothing from third-party hosts, and the actions that
 * would write job data Switchyard never validated (Add job, Duplicate, Edit data) are refused: such a
 * job has no payload or attempts and breaks GET /v1/dlq. Tasks are enqueued through POST /v1/tasks.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Express, RequestHandler } from 'express';
import { poolLabel, queueLabel, type PoolRef } from '../model/names.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import { problem, sendReply } from './problem.ts';

export const BOARD_PATH = '/admin/queues';

/**
 * Routes of Bull Board that write job data (relative to BOARD_PATH). Express routes ignore case and a
 * trailing slash, so these do too.
 */
const UNVALIDATED_WRITES: ReadonlyArray<[string, RegExp]> = [
  ['POST', /^\/api\/queues\/[^/]+\/add\/?$/i],
  ['PATCH', /^\/api\/queues\/[^/]+\/[^/]+\/update-data\/?$/i],
];

const refuseUnvalidatedWrites: RequestHandler = (req, res, next) => {
  if (!UNVALIDATED_WRITES.some(([method, path]) => req.method === method && path.test(req.path))) return next();
  sendReply(
    res,
    problem(
      403,
      'Forbidden',
      "Bull Board's Add job, Duplicate and Edit data actions are turned off: a job written there skips Switchyard's validation (no payload, no attempts) and breaks its listings. Enqueue through POST /v1/tasks (or `switchyard enqueue`)",
      'BOARD_ACTION_DISABLED',
    ),
  );
};

/** Bull Board's page links a font stylesheet on a third-party host: drop absolute-URL links (the CSP blocks them anyway). */
const THIRD_PARTY_LINK = /<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi;

const withoutThirdPartyAssets: RequestHandler = (_req, res, next) => {
  const render = res.render.bind(res);
  res.render = ((view: string, options?: object) =>
    render(view, options ?? {}, (err: Error | null, html?: string) => (err ? next(err) : void res.send((html ?? '').replace(THIRD_PARTY_LINK, ''))))) as typeof res.render;
  next();
};

/**
 * The handlers to mount at BOARD_PATH, in order. `bodyParser` reads JSON bodies (our limit and
 * errors) before Bull Board's own parser, which then finds the body read and skips.
 * `extra`: queues that are not pools, shown under their own name (the workflow runs).
 */
export function boardRouter(queues: PoolQueues, bodyParser: readonly RequestHandler[], extra: readonly Queue[] = []): RequestHandler[] {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Switchyard', miscLinks: [{ text: 'Fleet dashboard', url: '/dashboard' }, { text: 'API docs', url: '/docs' }] } },
  });
  const add = (queue: Queue, ref: PoolRef) => board.addQueue(new BullMQAdapter(queue, { displayName: poolLabel(ref) }));
  for (const queue of extra) board.addQueue(new BullMQAdapter(queue, { displayName: queueLabel(queue.name) }));
  for (const { queue, ref } of queues.all()) add(queue, ref);
  queues.on('added', add);
  const app = serverAdapter.getRouter() as Express;
  app.disable('x-powered-by');
  return [refuseUnvalidatedWrites, ...bodyParser, withoutThirdPartyAssets, app];
}
