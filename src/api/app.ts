/**
 * The Express app: wires plain route functions to paths, behind auth, with one error mapper.
 * Usable on its own (tests build it around their own parts); server.ts builds the real parts.
 */
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import type { RedisConnection } from '../redis/connection.ts';
import type { Catalogue } from '../model/catalogue.ts';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import type { TaskLookup } from '../task/lookup.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import type { TaskProducer } from '../task/producer.ts';
import { authorizer } from './auth.ts';
import { traceRequests, withinRequest } from './trace-requests.ts';
import type { KeyRing } from './key-ring.ts';
import { batchTypes, requireScope, requireTypes, scheduleTypes, taskTypes, workerTypes, workflowTypes } from './scopes.ts';
import type { LeaseDesk } from '../agent/lease-desk.ts';
import { deregisterWorker, extendLeases, heartbeat, lease, leaseRequest, registerWorker, reportResults } from './routes/workers.ts';
import { REQUEST_DEADLINE_MS } from '../redis/connection.ts';
import { docsPage } from './docs-page.ts';
import { openApiDocument } from './openapi.ts';
import type { ApiMetrics } from '../metrics/api-metrics.ts';
import { lengthOf, oneTask, rateLimiter } from './rate-limit.ts';
import { BOARD_PATH, boardRouter } from './board.ts';
import { problem, problemOf, sendReply, type Reply } from './problem.ts';
import { bodyParsers, closeUnreadBodies } from './json-body.ts';
import { hostCheck } from './host-check.ts';
import { refuseCrossSite } from './origin.ts';
import { healthz, readyz } from './routes/health.ts';
import { cancelTask, createBatch, createTask, getTask } from './routes/tasks.ts';
import { listDeadLetters, replayDeadLetter, replayDeadLetters } from './routes/dead-letters.ts';
import type { DeadLetters } from '../task/dead-letters.ts';
import type { TaskCanceller } from '../task/cancel.ts';
import { drainAgent, listAgents, listPools } from './routes/agents.ts';
import { listBreakers, resetBreaker } from './routes/breakers.ts';
import type { BreakerState } from '../model/breaker-state.ts';
import type { PoolRef } from '../model/names.ts';
import type { Registry } from '../registry/registry.ts';
import { withRedis } from '../redis/connection.ts';
import type { WorkflowRuns } from '../workflow/runs.ts';
import { streamEvents } from './routes/events.ts';
import type { EventFeed } from '../events/event-feed.ts';
import { cancelWorkflow, createWorkflow, getWorkflow, listWorkflows, sendSignal } from './routes/workflows.ts';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, updateSchedule } from './routes/schedules.ts';
import type { Schedules } from '../schedule/schedules.ts';

export interface ApiDeps {
  config: Pick<Config, 'allowedHosts' | 'maxBodyBytes' | 'keepCompleted' | 'prefix' | 'rateLimit'>;
  /** The API keys accepted (none: protected mode, loopback clients only, decided when the app is built). */
  keys: KeyRing;
  redis: RedisConnection;
  queues: PoolQueues;
  producer: TaskProducer;
  lookup: TaskLookup;
  catalogue: Catalogue;
  registry: Registry;
  deadLetters: DeadLetters;
  canceller: TaskCanceller;
  workflows: WorkflowRuns;
  schedules: Schedules;
  /** Queues Bull Board shows besides the pools (the workflow runs, the schedules' fires). */
  boardQueues?: readonly Queue[];
  /** The cached breaker state of a pool (CLOSED when never heard of). */
  breakerState: (ref: PoolRef) => BreakerState;
  log: Logger;
  /** Switchyard's version, for the OpenAPI document. */
  version?: string;
  /** GET /metrics, and the timing of every request. */
  metrics?: ApiMetrics;
  /** GET /v1/events; absent when the event log is off (404). */
  events?: EventFeed;
  /** The worker protocol over HTTP (/v1/workers); absent: those routes answer 404. */
  desk?: LeaseDesk;
  /** The /dashboard page (dashboard/router.ts), handed in by whoever starts the API: src/ does not import it. */
  dashboard?: express.RequestHandler;
}

const send = sendReply;

const handle =
  (fn: (req: Request) => Reply | Promise<Reply>): RequestHandler =>
  async (req, res) => send(res, await withinRequest(res, () => fn(req)));

/**
 * Bull Board's page: no third-party host may serve it anything. Its inline style attributes need
 * 'unsafe-inline' styles; its scripts are files (the inline JSON block is data, not script).
 * No upgrade-insecure-requests: the API is plain HTTP on loopback.
 */
const boardPolicy = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    fontSrc: ["'self'", 'data:'],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'self'"],
  },
};

/** The app: the edge (host, cross-site, security headers, health), auth, pages, the /v1 API, documents, errors. */
export function createApp(d: ApiDeps): express.Express {
  const app = express();
  const body = bodyParsers(d.config.maxBodyBytes);
  useEdge(app, d);
  useAuth(app, d);
  app.use(BOARD_PATH, ...boardRouter(d.queues, body.page, d.boardQueues));
  if (d.dashboard) app.use('/dashboard', d.dashboard);
  useTaskRoutes(app, d, body);
  useScheduleRoutes(app, d, body);
  useFleetRoutes(app, d, body);
  if (d.desk) useWorkerRoutes(app, d, d.desk, body);
  useDocuments(app, d);
  useFallbacks(app, d);
  return app;
}

type BodyParsers = ReturnType<typeof bodyParsers>;

/** What runs before auth: the request timer, unread-body handling, the Host and cross-site checks, headers, health. */
function useEdge(app: express.Express, d: ApiDeps): void {
  app.disable('x-powered-by');
  app.set('etag', false);
  if (d.metrics) app.use(d.metrics.http);
  app.use(traceRequests);
  app.use(closeUnreadBodies);

  // Without keys, loopback is the only protection: refuse names that are not ours (DNS rebinding).
  if (!d.keys.keyed) app.use(hostCheck(d.config.allowedHosts));
  // Browsers send stored credentials from any page: no route changes state for another site's page.
  app.use(refuseCrossSite);

  // Browser pages get helmet's full set of security headers (Bull Board's with a CSP of its own);
  // JSON answers get nosniff in send(), which costs one header, not a middleware chain.
  app.use(BOARD_PATH, helmet({ contentSecurityPolicy: boardPolicy }));
  app.use(['/dashboard', '/docs'], helmet({ contentSecurityPolicy: false }));
  app.get('/healthz', handle(healthz));
  app.get('/readyz', handle(() => readyz(d.redis)));
}

/**
 * Every route below needs a key when keys are set (browsers opening a page get a Basic-auth prompt),
 * and the key the scope of its route (scopes.ts).
 */
function useAuth(app: express.Express, d: ApiDeps): void {
  const authorize = authorizer(d.keys);
  app.use((req, res, next) => {
    const result = authorize(req);
    if (result.ok) {
      res.locals.principal = result.principal;
      return requireScope(req, res, next);
    }
    const browserPage = req.path.startsWith(BOARD_PATH) || req.path.startsWith('/dashboard');
    res.set('www-authenticate', browserPage ? 'Basic realm="switchyard", charset="UTF-8"' : 'Bearer realm="switchyard"');
    send(res, problem(401, 'Unauthorized', result.reason, 'UNAUTHORIZED'));
  });
}

/** Tasks, workflows and dead letters. */
function useTaskRoutes(app: express.Express, d: ApiDeps, body: BodyParsers): void {
  const limit = rateLimiter(d.redis, d.config.prefix, d.config.rateLimit, d.keys.keyed);
  app.post('/v1/tasks', body.required, requireTypes(taskTypes), limit(oneTask), handle((req) => createTask(d.producer, req.body)));
  app.post('/v1/tasks/batch', body.required, requireTypes(batchTypes), limit(lengthOf('tasks')), handle((req) => createBatch(d.producer, req.body)));
  app.get('/v1/tasks/:id', handle((req) => getTask(d.lookup, String(req.params.id), d.config.keepCompleted.age)));
  app.delete('/v1/tasks/:id', body.none, handle((req) => withRedis(d.redis, () => cancelTask(d.canceller, String(req.params.id)))));
  app.post('/v1/workflows', body.required, requireTypes(workflowTypes), limit(lengthOf('nodes')), handle((req) => withRedis(d.redis, () => createWorkflow(d.workflows, req.body))));
  app.get('/v1/workflows', handle((req) => withRedis(d.redis, () => listWorkflows(d.workflows, req.query))));
  app.get('/v1/workflows/:id', handle((req) => withRedis(d.redis, () => getWorkflow(d.workflows, String(req.params.id), req.query))));
  app.delete('/v1/workflows/:id', body.none, handle((req) => withRedis(d.redis, () => cancelWorkflow(d.workflows, String(req.params.id)))));
  app.post('/v1/workflows/:id/signals/:name', body.required, limit(oneTask), handle((req) => withRedis(d.redis, () => sendSignal(d.workflows, String(req.params.id), String(req.params.name), req.body))));
  app.get('/v1/events', (req, res) => streamEvents(d.events, req, res));
  app.get('/v1/dlq', handle((req) => withRedis(d.redis, () => listDeadLetters(d.deadLetters, req.query))));
  app.post('/v1/dlq/replay', body.optional, handle((req) => withRedis(d.redis, () => replayDeadLetters(d.deadLetters, req.body))));
  app.post('/v1/dlq/:id/replay', body.none, handle((req) => withRedis(d.redis, () => replayDeadLetter(d.deadLetters, String(req.params.id)))));
}

/** Schedules: what starts tasks and workflows on a cron or an interval. */
function useScheduleRoutes(app: express.Express, d: ApiDeps, body: BodyParsers): void {
  const limit = rateLimiter(d.redis, d.config.prefix, d.config.rateLimit, d.keys.keyed);
  const id = (req: Request) => String(req.params.id);
  app.post('/v1/schedules', body.required, requireTypes(scheduleTypes), limit(oneTask), handle((req) => withRedis(d.redis, () => createSchedule(d.schedules, req.body))));
  app.get('/v1/schedules', handle((req) => withRedis(d.redis, () => listSchedules(d.schedules, req.query))));
  app.get('/v1/schedules/:id', handle((req) => withRedis(d.redis, () => getSchedule(d.schedules, id(req)))));
  app.patch('/v1/schedules/:id', body.required, requireTypes(scheduleTypes), limit(oneTask), handle((req) => withRedis(d.redis, () => updateSchedule(d.schedules, id(req), req.body))));
  app.delete('/v1/schedules/:id', body.none, handle((req) => withRedis(d.redis, () => deleteSchedule(d.schedules, id(req)))));
}

/** Agents, pools and breakers. */
function useFleetRoutes(app: express.Express, d: ApiDeps, body: BodyParsers): void {
  app.get('/v1/agents', handle((req) => withRedis(d.redis, () => listAgents(d.registry, req.query))));
  app.post('/v1/agents/:id/drain', body.none, handle((req) => withRedis(d.redis, () => drainAgent(d.registry, String(req.params.id)))));
  app.get('/v1/pools', handle((req) => withRedis(d.redis, () => listPools(d.registry, d.queues, req.query, d.breakerState, d.catalogue))));
  app.get('/v1/breakers', handle(() => withRedis(d.redis, () => listBreakers(d.redis, d.config.prefix, d.catalogue))));
  app.post('/v1/breakers/:type/:pool/reset', body.none, handle((req) => withRedis(d.redis, () => resetBreaker(d.redis, d.config.prefix, d.catalogue, String(req.params.type), String(req.params.pool)))));
}

/** The worker protocol: agents of any language register, heartbeat, lease, extend and report over HTTP. */
function useWorkerRoutes(app: express.Express, d: ApiDeps, desk: LeaseDesk, body: BodyParsers): void {
  const types = requireTypes(workerTypes);
  const id = (req: Request) => String(req.params.id);
  app.post('/v1/workers', body.required, types, handle((req) => withRedis(d.redis, () => registerWorker(desk, req.body))));
  app.delete('/v1/workers/:id', body.none, types, handle((req) => withRedis(d.redis, () => deregisterWorker(desk, id(req)))));
  app.post('/v1/workers/:id/heartbeat', body.required, types, handle((req) => withRedis(d.redis, () => heartbeat(desk, id(req), req.body))));
  app.post('/v1/workers/:id/leases', body.optional, types, (req: Request, res: Response, next: NextFunction) => {
    // A long poll: answered early when the client goes away (nothing is leased after that); Redis's deadline is past its wait.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    return handle(() => {
      const ask = leaseRequest(req.body);
      return withRedis(d.redis, () => lease(desk, id(req), ask, gone.signal), REQUEST_DEADLINE_MS + ask.waitMs);
    })(req, res, next);
  });
  app.post('/v1/workers/:id/leases/extend', body.required, types, handle((req) => withRedis(d.redis, () => extendLeases(desk, id(req), req.body))));
  app.post('/v1/workers/:id/results', body.required, types, handle((req) => withRedis(d.redis, () => reportResults(desk, id(req), req.body))));
}

/** The agent types, the OpenAPI document, its HTML page and the metrics. */
function useDocuments(app: express.Express, d: ApiDeps): void {
  const agentTypes = d.catalogue.describe();
  app.get('/v1/agent-types', handle(() => ({ status: 200, body: agentTypes })));
  const openapi = openApiDocument(d.catalogue, d.version ?? '0.0.0');
  app.get('/openapi.json', handle(() => ({ status: 200, body: openapi })));
  const docs = docsPage(openapi);
  app.get('/docs', (_req, res) => void res.type('html').send(docs));
  const metrics = d.metrics;
  // Bounded like every route that reads Redis: while Redis is down the scrape gets a 503 at once, not a hang.
  if (metrics) app.get('/metrics', async (_req, res) => void res.type(metrics.contentType).send(await metrics.scrape(() => withRedis(d.redis, () => metrics.metrics()))));
}

/** 404 for an unknown route; every error as problem+json (an unexpected one logged). */
function useFallbacks(app: express.Express, d: ApiDeps): void {
  app.use((req, res) => {
    send(res, problem(404, 'Not found', `no route ${req.method} ${req.path}; see the API table in the README`, 'NOT_FOUND'));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { reply, unexpected } = problemOf(err);
    if (unexpected) d.log.error({ err, method: req.method, path: req.path }, 'unexpected error while handling a request');
    if (res.headersSent) return res.end();
    send(res, reply);
  });
}
