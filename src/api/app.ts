/**
 * The Express app: wires plain route functions to paths, behind auth, with one error mapper.
 * Usable on its own (tests build it around their own parts); server.ts builds the real parts.
 */
import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import typeis from 'type-is';
import helmet from 'helmet';
import type { RedisConnection } from '../redis/connection.ts';
import type { Catalogue } from '../agent-type/catalogue.ts';
import type { Config } from '../config/env.ts';
import { SwitchyardError, ValidationError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { TaskLookup } from '../task/lookup.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import type { TaskProducer } from '../task/producer.ts';
import { authorizer } from './auth.ts';
import { docsPage } from './docs-page.ts';
import { openApiDocument } from './openapi.ts';
import type { ApiMetrics } from '../metrics/api-metrics.ts';
import { lengthOf, oneTask, rateLimiter } from './rate-limit.ts';
import { BOARD_PATH, boardRouter } from './board.ts';
import { dashboardRouter } from '../../dashboard/router.ts';
import { problem, problemOf, type Reply } from './problem.ts';
import { healthz, readyz } from './routes/health.ts';
import { cancelTask, createBatch, createTask, getTask } from './routes/tasks.ts';
import { listDeadLetters, replayDeadLetter, replayDeadLetters } from './routes/dead-letters.ts';
import type { DeadLetters } from '../task/dead-letters.ts';
import type { TaskCanceller } from '../task/cancel.ts';
import { drainAgent, listAgents, listPools } from './routes/agents.ts';
import { listBreakers, resetBreaker } from './routes/breakers.ts';
import type { BreakerState } from '../breaker/state.ts';
import type { PoolRef } from '../redis/keys.ts';
import type { Registry } from '../registry/registry.ts';
import { withRedis } from '../redis/connection.ts';
import type { WorkflowRuns } from '../workflow/runs.ts';
import { cancelWorkflow, createWorkflow, getWorkflow, listWorkflows } from './routes/workflows.ts';

export interface ApiDeps {
  config: Pick<Config, 'apiKeys' | 'maxBodyBytes' | 'keepCompleted' | 'prefix' | 'rateLimit'>;
  redis: RedisConnection;
  queues: PoolQueues;
  producer: TaskProducer;
  lookup: TaskLookup;
  catalogue: Catalogue;
  registry: Registry;
  deadLetters: DeadLetters;
  canceller: TaskCanceller;
  workflows: WorkflowRuns;
  /** Queues Bull Board shows besides the pools (the workflow runs). */
  boardQueues?: readonly Queue[];
  /** The cached breaker state of a pool (CLOSED when never heard of). */
  breakerState: (ref: PoolRef) => BreakerState;
  log: Logger;
  /** Switchyard's version, for the OpenAPI document. */
  version?: string;
  /** GET /metrics, and the timing of every request. */
  metrics?: ApiMetrics;
}

const JSON_TYPES = ['application/json', 'application/*+json'];

function send(res: Response, reply: Reply): void {
  res.setHeader('x-content-type-options', 'nosniff');
  if (reply.headers) res.set(reply.headers);
  res.status(reply.status);
  if (reply.body === undefined) res.end();
  else if (reply.headers?.['content-type']) res.send(JSON.stringify(reply.body));
  else res.json(reply.body);
}

const handle =
  (fn: (req: Request) => Reply | Promise<Reply>): RequestHandler =>
  async (req, res) => send(res, await fn(req));

/** 400 when there is no body, 415 when it is not JSON; runs before the parser so nothing is read in vain. */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const length = req.headers['content-length'];
  if (!typeis.hasBody(req) || length === '0') {
    throw new ValidationError('the request needs a JSON body', [{ path: '', message: 'required' }]);
  }
  if (!typeis(req, JSON_TYPES)) {
    throw new SwitchyardError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Type must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? '(none)')}`,
    );
  }
  next();
};

/** Like requireJsonBody, but an empty body is fine (it means "no filter"). */
const optionalJsonBody: RequestHandler = (req, res, next) => {
  if (!typeis.hasBody(req) || req.headers['content-length'] === '0') return next();
  requireJsonBody(req, res, next);
};

/** True when a browser says, or the Origin shows, that the request comes from another site. */
function isCrossSite(req: Request): boolean {
  if (req.headers['sec-fetch-site'] === 'cross-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true; // "null" (sandboxed, file:) or malformed
  }
}

export function createApp(d: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (d.metrics) app.use(d.metrics.http);

  // Browser pages get helmet's full set of security headers (no CSP: Bull Board's page needs its
  // inline bootstrap); JSON answers get nosniff in send(), which costs one header, not a middleware chain.
  const pageHeaders = helmet({ contentSecurityPolicy: false });
  app.use([BOARD_PATH, '/dashboard', '/docs'], pageHeaders);
  app.get('/healthz', handle(healthz));
  app.get('/readyz', handle(() => readyz(d.redis)));

  const authorize = authorizer(d.config.apiKeys);
  app.use((req, res, next) => {
    const result = authorize(req);
    if (result.ok) return next();
    const browserPage = req.path.startsWith(BOARD_PATH) || req.path.startsWith('/dashboard');
    res.set('www-authenticate', browserPage ? 'Basic realm="switchyard", charset="UTF-8"' : 'Bearer realm="switchyard"');
    send(res, problem(401, 'Unauthorized', result.reason, 'UNAUTHORIZED'));
  });

  // Bull Board acts (retry, clean, pause) on plain browser requests authenticated by Basic auth,
  // which a browser also sends from another site's form: refuse changes that come cross-site.
  app.use(BOARD_PATH, (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    if (!isCrossSite(req)) return next();
    send(res, problem(403, 'Forbidden', 'Bull Board actions are accepted only from its own page (cross-site request refused)', 'FORBIDDEN'));
  });
  app.use(BOARD_PATH, boardRouter(d.queues, d.boardQueues));
  app.use('/dashboard', dashboardRouter());

  const json = express.json({ limit: d.config.maxBodyBytes, type: JSON_TYPES, strict: false });
  const limit = rateLimiter(d.redis, d.config.prefix, d.config.rateLimit);
  app.post('/v1/tasks', requireJsonBody, json, limit(oneTask), handle((req) => createTask(d.producer, req.body)));
  app.post('/v1/tasks/batch', requireJsonBody, json, limit(lengthOf('tasks')), handle((req) => createBatch(d.producer, req.body)));
  app.get('/v1/tasks/:id', handle((req) => getTask(d.lookup, String(req.params.id), d.config.keepCompleted.age)));
  app.delete('/v1/tasks/:id', handle((req) => withRedis(d.redis, () => cancelTask(d.canceller, String(req.params.id)))));
  app.post('/v1/workflows', requireJsonBody, json, limit(lengthOf('nodes')), handle((req) => withRedis(d.redis, () => createWorkflow(d.workflows, req.body))));
  app.get('/v1/workflows', handle((req) => withRedis(d.redis, () => listWorkflows(d.workflows, req.query))));
  app.get('/v1/workflows/:id', handle((req) => withRedis(d.redis, () => getWorkflow(d.workflows, String(req.params.id)))));
  app.delete('/v1/workflows/:id', handle((req) => withRedis(d.redis, () => cancelWorkflow(d.workflows, String(req.params.id)))));
  app.get('/v1/dlq', handle((req) => withRedis(d.redis, () => listDeadLetters(d.deadLetters, req.query))));
  app.post('/v1/dlq/replay', optionalJsonBody, json, handle((req) => withRedis(d.redis, () => replayDeadLetters(d.deadLetters, req.body))));
  app.post('/v1/dlq/:id/replay', handle((req) => withRedis(d.redis, () => replayDeadLetter(d.deadLetters, String(req.params.id)))));
  app.get('/v1/agents', handle((req) => withRedis(d.redis, () => listAgents(d.registry, req.query))));
  app.post('/v1/agents/:id/drain', handle((req) => withRedis(d.redis, () => drainAgent(d.registry, String(req.params.id)))));
  app.get('/v1/pools', handle((req) => withRedis(d.redis, () => listPools(d.registry, d.queues, req.query, d.breakerState))));
  app.get('/v1/breakers', handle(() => withRedis(d.redis, () => listBreakers(d.redis, d.config.prefix, d.catalogue))));
  app.post('/v1/breakers/:type/:pool/reset', handle((req) => withRedis(d.redis, () => resetBreaker(d.redis, d.config.prefix, d.catalogue, String(req.params.type), String(req.params.pool)))));
  const agentTypes = d.catalogue.describe();
  app.get('/v1/agent-types', handle(() => ({ status: 200, body: agentTypes })));
  const openapi = openApiDocument(d.catalogue, d.version ?? '0.0.0');
  app.get('/openapi.json', handle(() => ({ status: 200, body: openapi })));
  const docs = docsPage(openapi);
  app.get('/docs', (_req, res) => void res.type('html').send(docs));
  const metrics = d.metrics;
  // Bounded like every route that reads Redis: while Redis is down the scrape gets a 503 at once, not a hang.
  if (metrics) app.get('/metrics', async (_req, res) => void res.type(metrics.contentType).send(await withRedis(d.redis, () => metrics.metrics())));

  app.use((req, res) => {
    send(res, problem(404, 'Not found', `no route ${req.method} ${req.path}; see the API table in the README`, 'NOT_FOUND'));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { reply, unexpected } = problemOf(err);
    if (unexpected) d.log.error({ err, method: req.method, path: req.path }, 'unexpected error while handling a request');
    if (res.headersSent) return res.end();
    send(res, reply);
  });
  return app;
}
