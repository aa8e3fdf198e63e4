/**
 * src/workflow/: the DAG engine. This file holds what a workflow is and its validation, done in
 * full before anything is written: the request's shape, node ids, dependencies, a cycle (named
 * node by node), agent types and every payload against its type's schema, with paths such as
 * `nodes[3].payload.amount`. Linear in nodes + edges (a 10 000-node DAG validates in milliseconds).
 * The folder may import agent-type/, routing/, task/, redis/; the API and agents import it.
 */
import { z } from 'zod';
import type { Catalogue } from './catalogue.ts';
import { ValidationError, type FieldIssue } from './errors.ts';
import { backoffSchema } from './backoff.ts';
import { payloadSchema, taskRequestSchema } from './task-request.ts';
import { summarize, toFieldIssues } from './validation.ts';

/** Node ids become part of BullMQ job ids (`<runId>.<nodeId>`), which must not hold `:` or `.`. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const nodeId = z.string().regex(NODE_ID_PATTERN, 'letters, digits, _ and - (1-64 characters)');

/** A node takes a task's per-task options, minus those that only make sense for a lone task. */
export const nodeSchema = taskRequestSchema.omit({ idempotencyKey: true, delayMs: true }).extend({
  id: nodeId,
  dependsOn: z.array(nodeId).max(10_000).default([]),
  /** What undoes this node once it completed, should the workflow fail: defaults to the node's type and payload. */
  compensate: z.strictObject({ type: taskRequestSchema.shape.type.optional(), payload: payloadSchema.optional() }).optional(),
});

export const workflowRequestSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  nodes: z.array(z.unknown()).min(1, 'a workflow needs at least one node'),
  idempotencyKey: taskRequestSchema.shape.idempotencyKey,
});

export type NodeSpec = Omit<z.output<typeof nodeSchema>, 'compensate'> & {
  /** Present when the node has a compensation: its type and validated payload. */
  compensate?: { type: string; payload: unknown };
};

export interface WorkflowSpec {
  name: string;
  nodes: NodeSpec[];
  idempotencyKey?: string;
  /** Node ids in a topological order (every node after its dependencies). */
  order: string[];
  /** Node id -> ids of the nodes that depend on it. */
  dependents: Map<string, string[]>;
}

/** Validates a workflow request; throws a ValidationError listing every problem found. */
export function validateWorkflow(raw: unknown, catalogue: Catalogue, maxNodes: number): WorkflowSpec {
  const top = workflowRequestSchema.safeParse(raw);
  if (!top.success) throw invalid('workflow request', toFieldIssues(top.error));
  const req = top.data;
  if (req.nodes.length > maxNodes) {
    throw invalid('workflow', [{ path: 'nodes', message: `at most ${maxNodes} nodes (SWITCHYARD_MAX_WORKFLOW_NODES), got ${req.nodes.length}` }]);
  }
  const issues: FieldIssue[] = [];
  const index = new Map<string, number>();
  const nodes = req.nodes.flatMap((rawNode, i) => checkNode(rawNode, i, catalogue, index, issues) ?? []);
  if (issues.length > 0) throw invalid('workflow', issues);
  checkDependencies(nodes, index, issues);
  if (issues.length > 0) throw invalid('workflow', issues);

  const { order, dependents } = topologicalOrder(nodes);
  if (order.length < nodes.length) {
    const cycle = findCycle(nodes, new Set(order));
    throw invalid('workflow', [{ path: `nodes[${index.get(cycle[0]!)}].dependsOn`, message: `cycle: ${[...cycle, cycle[0]].join(' -> ')}` }]);
  }
  return { name: req.name ?? 'workflow', nodes, order, dependents, ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}) };
}

/** One node: its shape, a unique id, a declared type, its payload and backoff, its compensation. Records its index. */
function checkNode(rawNode: unknown, i: number, catalogue: Catalogue, index: Map<string, number>, issues: FieldIssue[]): NodeSpec | undefined {
  const base = `nodes[${i}]`;
  const parsed = nodeSchema.safeParse(rawNode);
  if (!parsed.success) return void issues.push(...toFieldIssues(parsed.error, base));
  const { compensate, ...node } = parsed.data;
  const first = index.get(node.id);
  if (first !== undefined) issues.push({ path: `${base}.id`, message: `duplicate node id ${JSON.stringify(node.id)} (also nodes[${first}])` });
  else index.set(node.id, i);

  const type = catalogue.find(node.type);
  if (!type) issues.push({ path: `${base}.type`, message: `unknown agent type ${JSON.stringify(node.type)}; declared: ${catalogue.names.join(', ')}` });
  else {
    const payload = type.payload.safeParse(node.payload);
    if (payload.success) node.payload = payload.data;
    else issues.push(...toFieldIssues(payload.error, `${base}.payload`));
    // The engine resolves a node's backoff as the producer does (its type's, overridden field by field):
    // a combination the producer refuses would leave the node ready forever, never enqueued.
    if (node.backoff) {
      const backoff = backoffSchema.safeParse({ ...type.defaults.backoff, ...node.backoff });
      if (!backoff.success) issues.push(...toFieldIssues(backoff.error, `${base}.backoff`));
    }
  }
  const spec: NodeSpec = node;
  if (compensate) {
    const undoType = catalogue.find(compensate.type ?? node.type);
    if (!undoType) issues.push({ path: `${base}.compensate.type`, message: `unknown agent type ${JSON.stringify(compensate.type)}; declared: ${catalogue.names.join(', ')}` });
    else {
      const payload = undoType.payload.safeParse(compensate.payload === undefined ? node.payload : compensate.payload);
      if (payload.success) spec.compensate = { type: undoType.name, payload: payload.data };
      else issues.push(...toFieldIssues(payload.error, `${base}.compensate.payload`));
    }
  }
  return spec;
}

/** Dependencies: each must name a node, once, and not the node itself. */
function checkDependencies(nodes: readonly NodeSpec[], index: ReadonlyMap<string, number>, issues: FieldIssue[]): void {
  nodes.forEach((n, i) => {
    const seen = new Set<string>();
    n.dependsOn.forEach((dep, j) => {
      const path = `nodes[${i}].dependsOn[${j}]`;
      if (!index.has(dep)) issues.push({ path, message: `depends on ${JSON.stringify(dep)}, which is not a node of this workflow` });
      else if (dep === n.id) issues.push({ path, message: `node ${JSON.stringify(n.id)} depends on itself` });
      else if (seen.has(dep)) issues.push({ path, message: `${JSON.stringify(dep)} is listed twice` });
      seen.add(dep);
    });
  });
}

function invalid(what: string, issues: FieldIssue[]): ValidationError {
  return new ValidationError(`${what} is invalid, nothing was started: ${summarize(issues)}`, issues);
}

/** Kahn's algorithm; nodes on or behind a cycle are left out of `order`. */
function topologicalOrder(nodes: readonly NodeSpec[]): { order: string[]; dependents: Map<string, string[]> } {
  const dependents = new Map<string, string[]>();
  const waiting = new Map<string, number>();
  for (const n of nodes) {
    waiting.set(n.id, n.dependsOn.length);
    for (const dep of n.dependsOn) {
      const list = dependents.get(dep);
      if (list) list.push(n.id);
      else dependents.set(dep, [n.id]);
    }
  }
  const order = nodes.filter((n) => n.dependsOn.length === 0).map((n) => n.id);
  for (let i = 0; i < order.length; i++) {
    for (const d of dependents.get(order[i]!) ?? []) {
      const left = waiting.get(d)! - 1;
      waiting.set(d, left);
      if (left === 0) order.push(d);
    }
  }
  return { order, dependents };
}

/** One cycle among the nodes Kahn's algorithm could not order, as node ids in dependency order. */
function findCycle(nodes: readonly NodeSpec[], ordered: ReadonlySet<string>): string[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  // Every unordered node has an unordered dependency; following those must revisit a node.
  const start = nodes.find((n) => !ordered.has(n.id))!;
  const path: string[] = [];
  const at = new Map<string, number>();
  let current = start.id;
  while (!at.has(current)) {
    at.set(current, path.length);
    path.push(current);
    current = byId.get(current)!.dependsOn.find((d) => !ordered.has(d))!;
  }
  // path[at(current)..] follows "depends on" edges; reverse it so each node comes before its
  // dependent, then start at the node listed first in the request (the same answer every time).
  const cycle = path.slice(at.get(current)).reverse();
  const position = new Map(nodes.map((n, i) => [n.id, i]));
  let first = 0;
  cycle.forEach((id, i) => {
    if (position.get(id)! < position.get(cycle[first]!)!) first = i;
  });
  return [...cycle.slice(first), ...cycle.slice(0, first)];
}
