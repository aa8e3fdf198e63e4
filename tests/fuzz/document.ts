/**
 * The HTTP API as the fuzz knows it, standing in for the OpenAPI document until that exists (issue 14
 * says: generate from the route schemas and switch when it does). One entry per route of
 * src/api/app.ts: method, path, where its input comes from (the request schemas are the ones in src/),
 * its success statuses, and the shape of its answers (written here: src/ has them only as TS types).
 */
import { z } from 'zod';
import { BREAKER_STATES } from '../../src/breaker/state.ts';
import { HEALTH_STATES } from '../../src/health/state.ts';
import { STRATEGIES } from '../../src/routing/decision.ts';
import { TASK_STATES } from '../../src/task/view.ts';
import { RUN_STATES } from '../../src/workflow/run-store.ts';

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Operation {
  /** `METHOD /path/:param`, as in app.ts. */
  id: string;
  method: Method;
  path: string;
  /** Path parameters, in order. */
  params: readonly string[];
  /** Whether it reads a JSON body: required, optional (an empty body means "no filter") or not at all. */
  body: 'required' | 'optional' | 'none';
  /** Whether it reads the query string (through a strict schema). */
  query: boolean;
  success: readonly number[];
  response: z.ZodType;
}

const iso = z.iso.datetime();
const count = z.number().int().min(0);

const routing = z.strictObject({
  strategy: z.enum([...STRATEGIES, 'fixed']),
  pool: z.string().min(1),
  candidates: z.array(z.string()),
  reason: z.string(),
});

export const taskSummary = z.strictObject({
  id: z.string().min(1),
  type: z.string().min(1),
  pool: z.string().min(1),
  state: z.enum(TASK_STATES),
  routing,
});

export const taskView = taskSummary.extend({
  note: z.string().optional(),
  attempts: z.strictObject({ made: count, max: z.number().int().min(1), started: count }),
  priority: count,
  idempotencyKey: z.string().optional(),
  payload: z.unknown(),
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

const runSummary = z.strictObject({ id: z.string().regex(/^wf_/), name: z.string().min(1), state: z.enum(RUN_STATES) });

const nodeView = z.strictObject({
  id: z.string(),
  type: z.string(),
  state: z.enum(['pending', 'ready', 'queued', 'done', 'dead', 'skipped', 'cancelled']),
  dependsOn: z.array(z.string()),
  pool: z.string().optional(),
  attempts: count.optional(),
  startedAt: iso.optional(),
  finishedAt: iso.optional(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  compensation: z.strictObject({ type: z.string(), state: z.enum(['pending', 'ready', 'queued', 'done', 'failed', 'none']) }).optional(),
});

const runView = runSummary.extend({
  reason: z.string().optional(),
  createdAt: iso,
  finishedAt: iso.optional(),
  progress: z.strictObject({ total: z.number().int().min(1), done: count, running: count }),
  nodes: z.array(nodeView).min(1),
  compensations: z.array(
    z.strictObject({
      node: z.string(),
      state: z.enum(['done', 'failed']),
      type: z.string(),
      at: iso,
      pool: z.string().optional(),
      attempts: count.optional(),
      error: z.string().optional(),
    }),
  ),
});

const agentView = z.strictObject({
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

const poolOverview = z.strictObject({
  type: z.string(),
  pool: z.string(),
  name: z.string(),
  agents: z.strictObject({ HEALTHY: count, DEGRADED: count, UNHEALTHY: count, UNKNOWN: count, total: count, draining: count }),
  weight: z.number().min(0),
  concurrency: count,
  running: count,
  backlog: z.strictObject({ waiting: count, active: count, delayed: count, dead: count, completed: count }),
  breaker: z.enum(BREAKER_STATES),
  eligible: z.boolean(),
  reasons: z.array(z.string()),
});

const breakerView = z.strictObject({
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

const agentType = z.strictObject({
  name: z.string(),
  version: z.string(),
  description: z.string().optional(),
  defaults: z.record(z.string(), z.unknown()),
  breaker: z.record(z.string(), z.unknown()),
  strategy: z.enum(STRATEGIES),
  payloadSchema: z.record(z.string(), z.unknown()),
  resultSchema: z.record(z.string(), z.unknown()),
});

/** RFC 7807 problem+json, as src/api/problem.ts builds it: every error answer has this shape. */
export const problemBody = z.strictObject({
  type: z.string().regex(/^\/problems\/[a-z0-9-]+$/),
  title: z.string().min(1),
  status: z.number().int().min(400).max(599),
  detail: z.string().min(1),
  errors: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});

const op = (method: Method, path: string, o: Omit<Operation, 'id' | 'method' | 'path' | 'params' | 'body' | 'query'> & Partial<Pick<Operation, 'body' | 'query'>>): Operation => ({
  id: `${method} ${path}`,
  method,
  path,
  params: [...path.matchAll(/:([a-z]+)/g)].map((m) => m[1]!),
  body: o.body ?? 'none',
  query: o.query ?? false,
  success: o.success,
  response: o.response,
});

/** Every route of src/api/app.ts (Bull Board and the dashboard are pages: see PAGE_PATHS). */
export const OPERATIONS: readonly Operation[] = [
  op('POST', '/v1/tasks', { body: 'required', success: [202, 200], response: taskSummary }),
  op('POST', '/v1/tasks/batch', { body: 'required', success: [202], response: z.strictObject({ tasks: z.array(taskSummary.extend({ duplicate: z.literal(true).optional() })).min(1) }) }),
  op('GET', '/v1/tasks/:id', { success: [200], response: taskView }),
  op('DELETE', '/v1/tasks/:id', { success: [200, 202], response: taskView }),
  op('POST', '/v1/workflows', { body: 'required', success: [202, 200], response: runSummary.extend({ duplicate: z.literal(true).optional() }) }),
  op('GET', '/v1/workflows/:id', { success: [200], response: runView }),
  op('DELETE', '/v1/workflows/:id', { success: [200, 202], response: runView }),
  op('GET', '/v1/dlq', { query: true, success: [200], response: z.strictObject({ tasks: z.array(taskView) }) }),
  op('POST', '/v1/dlq/replay', {
    body: 'optional',
    success: [202],
    response: z.strictObject({ replayed: count, tasks: z.array(taskView) }).refine((r) => r.replayed === r.tasks.length, 'replayed counts the tasks'),
  }),
  op('POST', '/v1/dlq/:id/replay', { success: [202], response: taskView }),
  op('GET', '/v1/agents', { query: true, success: [200], response: z.array(agentView) }),
  op('POST', '/v1/agents/:id/drain', { success: [202], response: agentView.extend({ draining: z.literal(true) }) }),
  op('GET', '/v1/pools', { query: true, success: [200], response: z.array(poolOverview) }),
  op('GET', '/v1/breakers', { success: [200], response: z.array(breakerView) }),
  op('POST', '/v1/breakers/:type/:pool/reset', { success: [200], response: breakerView.extend({ state: z.literal('CLOSED') }) }),
  op('GET', '/v1/agent-types', { success: [200], response: z.array(agentType).min(1) }),
  op('GET', '/healthz', { success: [200], response: z.strictObject({ status: z.literal('ok') }) }),
  op('GET', '/readyz', { success: [200], response: z.strictObject({ status: z.literal('ready'), redis: z.literal('ok') }) }),
];

/** Browser pages mounted by the app: only their wrong methods are fuzzed (their GETs are HTML). */
export const PAGE_PATHS = ['/admin/queues', '/admin/queues/api/queues', '/dashboard'] as const;

/** Methods the fuzz sends where a route does not take them (HEAD and CONNECT are left out: no body, or no path). */
export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'] as const;

/** The methods some route answers at a concrete path. */
export function methodsAt(path: string): Set<string> {
  const allowed = new Set<string>();
  for (const o of OPERATIONS) {
    const pattern = new RegExp(`^${o.path.replace(/:[a-z]+/g, '[^/]+')}/?$`, 'i');
    if (pattern.test(path)) allowed.add(o.method);
  }
  return allowed;
}
