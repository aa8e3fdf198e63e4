/**
 * The HTTP API's contract: every operation of app.ts with its method, path, summary, the zod schemas
 * that validate its input (the very ones the routes use) and the shape of its answers. The OpenAPI
 * document (openapi.ts) is generated from it, and the fuzz (tests/fuzz) checks every answer against
 * it, so the document cannot drift from what the API does.
 */
import type { Scope } from '../model/api-key.ts';
import { z } from 'zod';
import { BREAKER_STATES } from '../model/breaker-state.ts';
import { HEALTH_STATES } from '../model/health-state.ts';
import { STRATEGIES } from '../model/routing.ts';
import { deadLetterFilterSchema, deadLetterQuerySchema } from '../task/dead-letters.ts';
import { batchRequestSchema, taskRequestSchema } from '../model/task-request.ts';
import { TASK_STATES } from '../task/view.ts';
import { DEFAULT_NODE_KIND, workflowRequestSchema } from '../model/workflow-definition.ts';
import { COMPENSATION_OUTCOMES, NODE_STATES, RUN_STATES } from '../model/workflow-states.ts';
import { NODE_KINDS } from '../workflow/node-kinds.ts';
import { agentQuerySchema, poolQuerySchema } from './routes/agents.ts';
import { recentRunsQuerySchema, runViewQuerySchema } from './routes/workflows.ts';
import { eventsQuerySchema } from './routes/events.ts';
import { PROGRESS_EVENT_BYTES, TASK_EVENT_STATES } from '../events/event-log.ts';
import { taskProgressSchema } from '../model/task-progress.ts';
import { scheduleListQuerySchema } from './routes/schedules.ts';
import { COMMIT_STATES, extendRequestSchema, leaseSchema, leaseStateSchema, registeredWorkerSchema, leaseRequestSchema, resultsRequestSchema, workerHeartbeatSchema, workerRegistrationSchema } from '../model/worker-protocol.ts';
import { MISFIRE_POLICIES, SCHEDULE_ID_PATTERN, schedulePatchSchema, scheduleRequestSchema } from '../model/schedule.ts';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Operation {
  /** `METHOD /path/:param`, as in app.ts. */
  id: string;
  method: Method;
  /** Express style: `/v1/tasks/:id`. */
  path: string;
  summary: string;
  /** Path parameters, in order. */
  params: readonly string[];
  /** Whether it reads a JSON body: required, optional (an empty body means "no filter") or not at all. */
  body: 'required' | 'optional' | 'none';
  /** The schema the route validates its body with, when it has one of its own. */
  bodySchema?: z.ZodType;
  /** Whether it reads the query string, and the (strict) schema it validates it with. */
  query: boolean;
  querySchema?: z.ZodObject;
  success: readonly number[];
  response: z.ZodType;
  /** Error statuses it may answer (problem+json), besides 401 and 503 which every authenticated route may. */
  errors: readonly number[];
  /** false for the probes, which answer without an API key. */
  auth: boolean;
  /** The scope a key needs for it (src/model/api-key.ts): by default `read` for a GET, `admin` otherwise. */
  scope: Scope;
  /** Set for a stream (Server-Sent Events): `response` is each event's data, not a JSON body. */
  stream?: 'text/event-stream';
}

const iso = z.iso.datetime();
const count = z.number().int().min(0);
/** A rate: at most `max` tasks started per `perMs`. */
const rate = z.strictObject({ max: count, perMs: count });
/** An agent type's flow limits (src/model/agent-type.ts typeLimitsSchema). */
const typeLimits = z.strictObject({ ratePerType: rate.optional(), ratePerPool: rate.optional(), ratePerKey: rate.optional(), concurrencyPerKey: count.optional() });

export const routingSchema = z.strictObject({
  strategy: z.enum([...STRATEGIES, 'fixed']),
  pool: z.string().min(1),
  candidates: z.array(z.string()),
  reason: z.string(),
});

export const taskSummarySchema = z.strictObject({
  id: z.string().min(1),
  type: z.string().min(1),
  pool: z.string().min(1),
  state: z.enum(TASK_STATES),
  routing: routingSchema,
});

export const taskViewSchema = taskSummarySchema.extend({
  note: z.string().optional(),
  attempts: z.strictObject({ made: count, max: z.number().int().min(1), started: count }),
  priority: count,
  idempotencyKey: z.string().optional(),
  payload: z.unknown(),
  progress: taskProgressSchema.optional(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  errors: z.array(z.string()),
  previousErrors: z.array(z.string()).optional(),
  createdAt: iso,
  startedAt: iso.optional(),
  finishedAt: iso.optional(),
  runAt: iso.optional(),
  agent: z.string().optional(),
  workflow: z.strictObject({ runId: z.string(), nodeId: z.string(), compensating: z.boolean() }).optional(),
});

export const runSummarySchema = z.strictObject({ id: z.string().regex(/^wf_/), name: z.string().min(1), state: z.enum(RUN_STATES) });

/** What every node's view has; each kind adds its fields (NodeKind.viewSchema), and names itself unless it is a task. */
const nodeViewBase = z.strictObject({
  id: z.string(),
  state: z.enum(NODE_STATES),
  dependsOn: z.array(z.string()),
  startedAt: iso.optional(),
  finishedAt: iso.optional(),
  result: z.unknown().optional(),
  error: z.string().optional(),
});
const nodeViewSchemas = NODE_KINDS.map((k) => nodeViewBase.extend({ ...(k.name === DEFAULT_NODE_KIND ? {} : { kind: z.literal(k.name) }), ...k.viewSchema.shape }));
const nodeViewSchema = nodeViewSchemas.length === 1 ? nodeViewSchemas[0]! : z.union(nodeViewSchemas);

/** A run without its nodes (GET /v1/workflows): a few hundred bytes whatever the run's size. */
export const runOverviewSchema = runSummarySchema.extend({
  reason: z.string().optional(),
  createdAt: iso,
  finishedAt: iso.optional(),
  progress: z.strictObject({ total: z.number().int().min(1), done: count, running: count }),
  nodeCounts: z.strictObject({ pending: count, ready: count, queued: count, done: count, dead: count, skipped: count, cancelled: count }).describe("nodes in each state; they add up to progress.total"),
  compensationCounts: z.strictObject({ done: count, failed: count }),
});

export const runViewSchema = runOverviewSchema.extend({
  nodes: z.array(nodeViewSchema).describe('one page of nodes, in request order (nodePage says which)'),
  nodePage: z.strictObject({ offset: count, limit: count, next: count.optional().describe("the next page's nodeOffset; absent on the last page") }),
  compensations: z.array(
    z.strictObject({
      node: z.string(),
      state: z.enum(COMPENSATION_OUTCOMES),
      type: z.string(),
      at: iso,
      pool: z.string().optional(),
      attempts: count.optional(),
      error: z.string().optional(),
    }),
  ),
});

export const scheduleViewSchema = z.strictObject({
  id: z.string().regex(SCHEDULE_ID_PATTERN),
  name: z.string().optional(),
  paused: z.boolean(),
  cron: z.string().optional(),
  timeZone: z.string().optional(),
  everyMs: z.number().int().min(1).optional(),
  startAt: iso.optional(),
  endAt: iso.optional(),
  misfire: z.enum(MISFIRE_POLICIES),
  task: z.record(z.string(), z.unknown()).optional().describe('what each fire enqueues (a task request)'),
  workflow: z.record(z.string(), z.unknown()).optional().describe('what each fire starts (a workflow request)'),
  createdAt: iso,
  updatedAt: iso,
  nextFires: z.array(iso).max(5).describe('the next fire times (none while paused or once ended)'),
  lastFire: z
    .strictObject({ tick: iso, at: iso, outcome: z.enum(['fired', 'skipped', 'failed']), id: z.string().optional().describe('the task or run it started'), reason: z.string().optional() })
    .optional(),
});

export const agentViewSchema = z.strictObject({
  id: z.string().min(1),
  type: z.string().min(1),
  pool: z.string().min(1),
  version: z.string(),
  capabilities: z.array(z.strictObject({ name: z.string(), version: z.string() })).min(1),
  tags: z.array(z.string()),
  metadata: z.record(z.string(), z.unknown()),
  weight: z.number().positive(),
  concurrency: z.number().int().min(1),
  host: z.string(),
  pid: count,
  startedAt: z.string(),
  health: z.enum(HEALTH_STATES),
  healthReason: z.string().optional(),
  running: count,
  load: z.number().min(0),
  draining: z.boolean(),
  lastHeartbeat: iso,
  responseTimeMs: z.number().min(0).optional(),
});

export const poolOverviewSchema = z.strictObject({
  type: z.string(),
  pool: z.string(),
  name: z.string(),
  agents: z.strictObject({ HEALTHY: count, DEGRADED: count, UNHEALTHY: count, UNKNOWN: count, total: count, draining: count }),
  weight: z.number().min(0),
  concurrency: count,
  running: count,
  backlog: z.strictObject({ waiting: count, active: count, delayed: count, dead: count, completed: count }),
  breaker: z.enum(BREAKER_STATES),
  rateLimit: z
    .strictObject({ max: count, perMs: count, limitedForMs: count.optional().describe('how long the pool waits before starting its next task, when it is at its rate now') })
    .optional()
    .describe("the type's ratePerPool"),
  limits: typeLimits.optional().describe("the type's flow limits, when it has any"),
  heldForMs: count.optional().describe("a handler of this pool threw RetryAfterError: its agents start nothing for this long"),
  eligible: z.boolean(),
  reasons: z.array(z.string()),
});

export const breakerViewSchema = z.strictObject({
  name: z.string().min(1),
  state: z.enum(BREAKER_STATES),
  trips: count,
  openedAt: iso.optional(),
  halfOpenAt: iso.optional(),
  changedAt: iso.optional(),
  reason: z.string().optional(),
  window: z.strictObject({ successes: count, failures: count }),
  probesInFlight: count,
});

export const agentTypeSchema = z.strictObject({
  name: z.string(),
  version: z.string(),
  description: z.string().optional(),
  defaults: z.record(z.string(), z.unknown()),
  breaker: z.record(z.string(), z.unknown()),
  strategy: z.enum(STRATEGIES),
  limits: typeLimits,
  payloadSchema: z.record(z.string(), z.unknown()),
  resultSchema: z.record(z.string(), z.unknown()),
});

/** RFC 7807 problem+json, as src/api/problem.ts builds it: every error answer has this shape. */
export const problemSchema = z.strictObject({
  type: z.string().regex(/^\/problems\/[a-z0-9-]+$/),
  title: z.string().min(1),
  status: z.number().int().min(400).max(599),
  detail: z.string().min(1),
  errors: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});


/** The data of an event of GET /v1/events (src/events/event-log.ts SwitchyardEvent). */
export const eventSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('task'), task: z.string(), type: z.string(), pool: z.string().optional(), state: z.enum(TASK_EVENT_STATES),
    attempt: z.number().int().optional(), run: z.string().optional(), node: z.string().optional(), error: z.string().optional(),
    progress: taskProgressSchema.optional().describe(`on a progress event: the value, when its JSON is at most ${PROGRESS_EVENT_BYTES} bytes (else read the task)`), at: z.number().int(),
  }),
  z.strictObject({ kind: z.literal('node'), run: z.string(), node: z.string(), state: z.enum(['done', 'dead', 'skipped']), at: z.number().int() }),
  z.strictObject({ kind: z.literal('run'), run: z.string(), name: z.string().optional(), state: z.string(), reason: z.string().optional(), at: z.number().int() }),
]);

/** On a task an enqueue answered with because a throttle or debounce window already held it. */
const flowFlags = {
  throttled: z.literal(true).optional().describe("this request's throttle window already held this task: nothing new was enqueued"),
  debounced: z.literal(true).optional().describe('the pending task of this debounce window took this request (its payload, run windowMs from now)'),
};

const WORKER_BODY_ERRORS = [400, 413, 415, 404];

type OperationSpec = Pick<Operation, 'summary' | 'success' | 'response'> & Partial<Pick<Operation, 'body' | 'bodySchema' | 'querySchema' | 'errors' | 'auth' | 'stream' | 'scope'>>;

const op = (method: Method, path: string, o: OperationSpec): Operation => ({
  id: `${method} ${path}`,
  method,
  path,
  params: [...path.matchAll(/:([a-z]+)/g)].map((m) => m[1]!),
  body: o.body ?? 'none',
  query: o.querySchema !== undefined,
  auth: o.auth ?? true,
  errors: o.errors ?? [],
  scope: o.scope ?? (method === 'GET' ? 'read' : 'admin'),
  ...o,
});

const BODY_ERRORS = [400, 413, 415, 429];

/** Every route of app.ts (Bull Board and the dashboard are pages, not operations). */
export const OPERATIONS: readonly Operation[] = [
  op('POST', '/v1/tasks', { scope: 'produce', summary: 'Enqueue a task', body: 'required', bodySchema: taskRequestSchema, success: [202, 200], response: taskSummarySchema.extend(flowFlags), errors: [...BODY_ERRORS, 404, 422] }),
  op('POST', '/v1/tasks/batch', { scope: 'produce',
    summary: 'Enqueue a batch of tasks, validated all or nothing',
    body: 'required',
    bodySchema: batchRequestSchema,
    success: [202],
    response: z.strictObject({ tasks: z.array(taskSummarySchema.extend({ duplicate: z.literal(true).optional(), ...flowFlags })).min(1) }),
    errors: [...BODY_ERRORS, 422],
  }),
  op('GET', '/v1/tasks/:id', { summary: 'A task: state, attempts, result or errors, routing', success: [200], response: taskViewSchema, errors: [404] }),
  op('DELETE', '/v1/tasks/:id', { scope: 'produce', summary: 'Cancel a task (remove it, or abort it if running)', success: [200, 202], response: taskViewSchema, errors: [404, 409] }),
  op('POST', '/v1/workflows', { scope: 'produce',
    summary: 'Start a workflow (a DAG of tasks, with compensations)',
    body: 'required',
    bodySchema: workflowRequestSchema,
    success: [202, 200],
    response: runSummarySchema.extend({ duplicate: z.literal(true).optional() }),
    errors: [...BODY_ERRORS, 422],
  }),
  op('GET', '/v1/workflows', { summary: 'Recent workflow runs, newest first, with node counts by state (no nodes)', querySchema: recentRunsQuerySchema, success: [200], response: z.strictObject({ runs: z.array(runOverviewSchema) }), errors: [400] }),
  op('GET', '/v1/workflows/:id', { summary: 'A workflow run: state, node counts, a page of its nodes, compensation log', querySchema: runViewQuerySchema, success: [200], response: runViewSchema, errors: [400, 404] }),
  op('DELETE', '/v1/workflows/:id', { scope: 'produce', summary: 'Cancel a workflow run', success: [200, 202], response: runViewSchema, errors: [404, 409] }),
  op('POST', '/v1/workflows/:id/signals/:name', { scope: 'produce',
    summary: "Send a signal to a run's signal node: its payload (the body) becomes the node's result (200), or is kept until the node is reached (202); once only (409)",
    body: 'required',
    bodySchema: z.unknown().describe("the signal's payload: any JSON object or array, checked against the node's schema"),
    success: [200, 202],
    response: z.strictObject({ run: z.string(), node: z.string(), signal: z.string(), state: z.enum(['delivered', 'kept']) }),
    errors: [...BODY_ERRORS, 404, 409],
  }),
  op('POST', '/v1/schedules', { scope: 'produce',
    summary: 'Create a schedule: a task or workflow started on a cron expression (IANA time zone) or an interval',
    body: 'required',
    bodySchema: scheduleRequestSchema,
    success: [201],
    response: scheduleViewSchema,
    errors: [...BODY_ERRORS, 409],
  }),
  op('GET', '/v1/schedules', {
    summary: 'Schedules, oldest first, with their next fire times',
    querySchema: scheduleListQuerySchema,
    success: [200],
    response: z.strictObject({ schedules: z.array(scheduleViewSchema), total: count }),
    errors: [400],
  }),
  op('GET', '/v1/schedules/:id', { summary: 'A schedule: its definition, next fire times and last fire', success: [200], response: scheduleViewSchema, errors: [404] }),
  op('PATCH', '/v1/schedules/:id', { scope: 'produce',
    summary: 'Change a schedule (paused: true pauses it, false resumes it)',
    body: 'required',
    bodySchema: schedulePatchSchema,
    success: [200],
    response: scheduleViewSchema,
    errors: [...BODY_ERRORS, 404],
  }),
  op('DELETE', '/v1/schedules/:id', { scope: 'produce', summary: 'Delete a schedule', success: [204], response: z.undefined(), errors: [404] }),
  op('GET', '/v1/events', {
    summary: 'Server-Sent Events of task, node and run state changes (event: task | node | run | gap), filtered; resumable with Last-Event-ID within the retention',
    querySchema: eventsQuerySchema,
    success: [200],
    stream: 'text/event-stream',
    response: eventSchema,
    errors: [400, 404],
  }),
  op('GET', '/v1/dlq', { summary: 'Dead tasks, newest first', querySchema: deadLetterQuerySchema, success: [200], response: z.strictObject({ tasks: z.array(taskViewSchema) }), errors: [400] }),
  op('POST', '/v1/dlq/replay', {
    summary: 'Replay every dead task matching a filter',
    body: 'optional',
    bodySchema: deadLetterFilterSchema,
    success: [202],
    response: z.strictObject({ replayed: count, tasks: z.array(taskViewSchema) }).refine((r) => r.replayed === r.tasks.length, 'replayed counts the tasks'),
    errors: [400, 413, 415],
  }),
  op('POST', '/v1/dlq/:id/replay', { summary: 'Replay one dead task with fresh attempts', success: [202], response: taskViewSchema, errors: [404, 409] }),
  op('GET', '/v1/agents', { summary: 'Live agents, filtered', querySchema: agentQuerySchema, success: [200], response: z.array(agentViewSchema), errors: [400] }),
  op('POST', '/v1/agents/:id/drain', { summary: 'Drain an agent: it finishes its tasks and takes no new ones', success: [202], response: agentViewSchema.extend({ draining: z.literal(true) }), errors: [404] }),
  op('GET', '/v1/pools', { summary: 'Pools: agents by health, weight, backlog, breaker, eligibility', querySchema: poolQuerySchema, success: [200], response: z.array(poolOverviewSchema), errors: [400] }),
  op('GET', '/v1/breakers', { summary: 'Every circuit breaker', success: [200], response: z.array(breakerViewSchema) }),
  op('POST', '/v1/breakers/:type/:pool/reset', { summary: "Close a pool's breaker now", success: [200], response: breakerViewSchema.extend({ state: z.literal('CLOSED') }), errors: [400, 404] }),
  op('POST', '/v1/workers', { scope: 'agent',
    summary: 'Register a worker of another process or language (the worker protocol): it gets tasks once a heartbeat says it is HEALTHY or DEGRADED',
    body: 'required', bodySchema: workerRegistrationSchema, success: [201], response: registeredWorkerSchema, errors: WORKER_BODY_ERRORS,
  }),
  op('DELETE', '/v1/workers/:id', { scope: 'agent', summary: 'Deregister a worker (a clean stop; leases it holds can still be reported)', success: [204], response: z.undefined(), errors: [404] }),
  op('POST', '/v1/workers/:id/heartbeat', { scope: 'agent',
    summary: "A worker's heartbeat: its health and load; the leases it names are extended, and answered cancelled when their task was",
    body: 'required', bodySchema: workerHeartbeatSchema, success: [200],
    response: z.strictObject({ draining: z.boolean(), leases: z.array(leaseStateSchema) }), errors: WORKER_BODY_ERRORS,
  }),
  op('POST', '/v1/workers/:id/leases', { scope: 'agent',
    summary: "Lease up to max tasks of the worker's pool, waiting up to waitMs for the first (long poll); none while it is unhealthy, draining, or its pool held (paused says why)",
    body: 'optional', bodySchema: leaseRequestSchema, success: [200],
    response: z.strictObject({ leases: z.array(leaseSchema), paused: z.string().optional() }), errors: WORKER_BODY_ERRORS,
  }),
  op('POST', '/v1/workers/:id/leases/extend', { scope: 'agent',
    summary: 'Extend leases: each extended, lost (stop: it runs elsewhere), cancelled (stop: its task was cancelled) or timeout (past its deadline: the attempt failed)',
    body: 'required', bodySchema: extendRequestSchema, success: [200], response: z.strictObject({ leases: z.array(leaseStateSchema) }), errors: WORKER_BODY_ERRORS,
  }),
  op('POST', '/v1/workers/:id/results', { scope: 'agent',
    summary: 'Report how leased tasks ended (completed with a result checked against the result schema, or failed: retryable, fatal, retryAfterMs); each committed once while its lease holds (conflict: nothing written; 409 for a single one)',
    body: 'required', bodySchema: resultsRequestSchema, success: [200],
    response: z.strictObject({ results: z.array(z.strictObject({ task: z.string(), state: z.enum(COMMIT_STATES), error: z.string().optional() })) }),
    errors: [...WORKER_BODY_ERRORS, 409],
  }),
  op('GET', '/v1/agent-types', { summary: 'Declared agent types, with the JSON Schemas of their payloads and results', success: [200], response: z.array(agentTypeSchema).min(1) }),
  op('GET', '/healthz', { summary: 'Liveness', success: [200], response: z.strictObject({ status: z.literal('ok') }), auth: false }),
  op('GET', '/readyz', { summary: 'Readiness: Redis answers', success: [200], response: z.strictObject({ status: z.literal('ready'), redis: z.literal('ok') }), auth: false }),
];
