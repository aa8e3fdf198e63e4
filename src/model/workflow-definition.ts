/**
 * What a workflow is and its validation, done in full before anything is written: the request's
 * shape, node ids, dependencies, a cycle (named node by node), and each node by its kind (a task's
 * agent type and payload against its type's schema), with paths such as `nodes[3].payload.amount`.
 * Linear in nodes + edges (a 10 000-node DAG validates in milliseconds).
 */
import { z } from 'zod';
import type { Catalogue } from './catalogue.ts';
import { ValidationError, type FieldIssue } from './errors.ts';
import { taskNode, type TaskNodeSpec } from './task-node.ts';
import { taskRequestSchema } from './task-request.ts';
import { kindName, type NodeCheckContext, type NodeDefinition, type NodeFields, type NodeSpec } from './workflow-node.ts';
import { summarize, toFieldIssues } from './validation.ts';
import { conditionNode, type Condition } from './condition.ts';

export { NODE_ID_PATTERN, DEFAULT_NODE_KIND, kindName, type NodeDefinition, type NodeFields, type NodeSpec, type NodeCheckContext } from './workflow-node.ts';
export { nodeSchema, taskNode, type TaskNodeSpec } from './task-node.ts';

/** The name of a run whose request gives none. */
export const DEFAULT_RUN_NAME = 'workflow';

export const workflowRequestSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  nodes: z.array(z.unknown()).min(1, 'a workflow needs at least one node'),
  idempotencyKey: taskRequestSchema.shape.idempotencyKey,
  /** Where the run's final view is POSTed when it ends (model/callback.ts). */
  callback: taskRequestSchema.shape.callback,
});

export interface WorkflowSpec {
  name: string;
  nodes: NodeSpec[];
  idempotencyKey?: string;
  /** Where the run's final view goes (its host checked by the caller against the allow-list). */
  callback?: { url: string };
  /** Node ids in a topological order (every node after its dependencies). */
  order: string[];
  /** Node id -> ids of the nodes that depend on it. */
  dependents: Map<string, string[]>;
}

/** The node kinds a request may name when the caller passes none: tasks. */
const TASKS_ONLY: readonly NodeDefinition[] = [taskNode];

/**
 * Validates a workflow request; throws a ValidationError listing every problem found. `kinds` are the
 * node kinds a request may name (the engine passes every registered kind, src/workflow/node-kinds.ts).
 */
export function validateWorkflow(raw: unknown, catalogue: Catalogue, maxNodes: number, kinds: readonly NodeDefinition[] = TASKS_ONLY): WorkflowSpec {
  const top = workflowRequestSchema.safeParse(raw);
  if (!top.success) throw invalid('workflow request', toFieldIssues(top.error));
  const req = top.data;
  if (req.nodes.length > maxNodes) {
    throw invalid('workflow', [{ path: 'nodes', message: `at most ${maxNodes} nodes (SWITCHYARD_MAX_WORKFLOW_NODES), got ${req.nodes.length}` }]);
  }
  const issues: FieldIssue[] = [];
  const index = new Map<string, number>();
  const byName = new Map(kinds.map((k) => [k.name, k]));
  const ctx: CheckContext = { catalogue, byName, index, names: new Map() };
  const nodes = req.nodes.flatMap((rawNode, i) => checkNode(rawNode, i, ctx, issues) ?? []);
  if (issues.length > 0) throw invalid('workflow', issues);
  checkDependencies(nodes, index, issues);
  for (const n of nodes) if (n.when) conditionNode(n.when as Condition, n.dependsOn, `nodes[${index.get(n.id)}]`, issues);
  if (issues.length > 0) throw invalid('workflow', issues);

  const { order, dependents } = topologicalOrder(nodes);
  if (order.length < nodes.length) {
    const cycle = findCycle(nodes, new Set(order));
    throw invalid('workflow', [{ path: `nodes[${index.get(cycle[0]!)}].dependsOn`, message: `cycle: ${[...cycle, cycle[0]].join(' -> ')}` }]);
  }
  return { name: req.name ?? DEFAULT_RUN_NAME, nodes, order, dependents, ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}), ...(req.callback ? { callback: req.callback } : {}) };
}

interface CheckContext extends NodeCheckContext {
  byName: ReadonlyMap<string, NodeDefinition>;
  /** Node id -> its index in the request (filled as nodes are checked). */
  index: Map<string, number>;
}

/** One node: a known kind, its kind's shape, a unique id, then its kind's own checks. Records its index. */
function checkNode(rawNode: unknown, i: number, ctx: CheckContext, issues: FieldIssue[]): NodeSpec | undefined {
  const base = `nodes[${i}]`;
  const name = kindName(rawNode);
  const kind = ctx.byName.get(name);
  if (!kind) return void issues.push({ path: `${base}.kind`, message: `unknown node kind ${JSON.stringify(name)}; known: ${[...ctx.byName.keys()].join(', ')}` });
  const parsed = kind.schema.safeParse(rawNode);
  if (!parsed.success) return void issues.push(...toFieldIssues(parsed.error, base));
  const { id } = parsed.data as { id: string };
  const first = ctx.index.get(id);
  if (first !== undefined) issues.push({ path: `${base}.id`, message: `duplicate node id ${JSON.stringify(id)} (also nodes[${first}])` });
  else ctx.index.set(id, i);
  return kind.check(parsed.data, base, ctx, issues);
}

/** A stored or validated node read as a task node (the task kind's own code does; nothing else needs to). */
export const asTaskNode = <T extends NodeFields>(node: T): T & Omit<TaskNodeSpec, 'id'> => node as T & Omit<TaskNodeSpec, 'id'>;

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
