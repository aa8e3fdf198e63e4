/**
 * Which generated inputs the API must accept, decided from the request schemas in src/ plus the rules
 * the documentation states beside them (a task's type must be declared and its payload fit the type;
 * a node takes what a task takes; a workflow is a DAG of unique ids). Written apart from the server's
 * own checks on purpose: where they disagree, one of them has a bug.
 */
import { parse as parseQuery } from 'node:querystring';
import type { Catalogue } from '../../src/model/catalogue.ts';
import { agentQuerySchema, poolQuerySchema } from '../../src/api/routes/agents.ts';
import { recentRunsQuerySchema, runViewQuerySchema } from '../../src/api/routes/workflows.ts';
import { parseCapability } from '../../src/registry/registry.ts';
import { backoffSchema } from '../../src/model/backoff.ts';
import { deadLetterFilterSchema, deadLetterQuerySchema } from '../../src/task/dead-letters.ts';
import { batchRequestSchema, taskRequestSchema } from '../../src/model/task-request.ts';
import { nodeSchema, workflowRequestSchema } from '../../src/model/workflow-definition.ts';

export interface Limits {
  maxBatch: number;
  maxWorkflowNodes: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A task request: its shape, a declared type, a payload that type accepts, and a backoff that resolves. */
export function taskIsValid(catalogue: Catalogue, raw: unknown): boolean {
  const req = taskRequestSchema.safeParse(raw);
  if (!req.success) return false;
  const type = catalogue.find(req.data.type);
  if (!type || !type.payload.safeParse(req.data.payload).success) return false;
  return !req.data.backoff || backoffSchema.safeParse({ ...type.defaults.backoff, ...req.data.backoff }).success;
}

export function batchIsValid(catalogue: Catalogue, limits: Limits, raw: unknown): boolean {
  const batch = batchRequestSchema.safeParse(raw);
  if (!batch.success || batch.data.tasks.length > limits.maxBatch) return false;
  const keys = new Set<string>();
  for (const task of batch.data.tasks) {
    if (!taskIsValid(catalogue, task)) return false;
    const { type, idempotencyKey } = task as { type: string; idempotencyKey?: string };
    if (idempotencyKey === undefined) continue;
    if (keys.has(`${type}\0${idempotencyKey}`)) return false;
    keys.add(`${type}\0${idempotencyKey}`);
  }
  return true;
}

export function workflowIsValid(catalogue: Catalogue, limits: Limits, raw: unknown): boolean {
  const top = workflowRequestSchema.safeParse(raw);
  if (!top.success || top.data.nodes.length > limits.maxWorkflowNodes) return false;
  const deps = new Map<string, string[]>();
  for (const rawNode of top.data.nodes) {
    const parsed = nodeSchema.safeParse(rawNode);
    if (!parsed.success) return false;
    const { id, dependsOn, compensate, kind: _kind, ...task } = parsed.data;
    if (deps.has(id) || !taskIsValid(catalogue, task)) return false;
    deps.set(id, dependsOn);
    if (compensate) {
      const payload = catalogue.get(task.type).payload.parse(task.payload);
      const undo = catalogue.find(compensate.type ?? task.type);
      if (!undo || !undo.payload.safeParse(compensate.payload === undefined ? payload : compensate.payload).success) return false;
    }
  }
  for (const [id, list] of deps) {
    if (new Set(list).size !== list.length || list.some((d) => d === id || !deps.has(d))) return false;
  }
  // Acyclic: repeatedly take the nodes whose dependencies are all taken.
  const taken = new Set<string>();
  for (let progress = true; progress; ) {
    progress = false;
    for (const [id, list] of deps) {
      if (!taken.has(id) && list.every((d) => taken.has(d))) {
        taken.add(id);
        progress = true;
      }
    }
  }
  return taken.size === deps.size;
}

/** POST /v1/dlq/replay: no body, `null` and `{}` all mean "every dead task". */
export function replayFilterIsValid(raw: unknown): boolean {
  return raw === null || (isObject(raw) && deadLetterFilterSchema.safeParse(raw).success);
}

/** A query string as Express 5 reads it (node:querystring, its "simple" parser), against the route's schema. */
export function queryIsValid(path: string, query: string): boolean {
  const parsed: unknown = parseQuery(query);
  switch (path) {
    case '/v1/dlq':
      return deadLetterQuerySchema.safeParse(parsed).success;
    case '/v1/pools':
      return poolQuerySchema.safeParse(parsed).success;
    case '/v1/workflows':
      return recentRunsQuerySchema.safeParse(parsed).success;
    case '/v1/workflows/:id':
      return runViewQuerySchema.safeParse(parsed).success;
    case '/v1/agents': {
      const q = agentQuerySchema.safeParse(parsed);
      if (!q.success) return false;
      if (!q.data.capability) return true;
      try {
        parseCapability(q.data.capability);
        return true;
      } catch {
        return false;
      }
    }
    default:
      throw new Error(`oracle: no query schema for ${path}`);
  }
}
