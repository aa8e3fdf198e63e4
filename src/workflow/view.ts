/**
 * How a workflow run looks from outside: an overview (GET /v1/workflows lists these: state, progress
 * and node counts by state, read from the run's meta hash alone) and a view (GET /v1/workflows/:id:
 * the overview, one page of nodes in request order, and the compensation log).
 */
import { DEFAULT_NODE_KIND } from '../model/workflow-definition.ts';
import type { NodeKind } from './node-kind.ts';
import { kindOf } from './node-kinds.ts';
import type { MapItemCounts, CompensationEntry, NodeCounts, NodeInfo, NodePage, NodeState, RunMeta, RunState, StoredNode, CompensationState } from './run-store.ts';

/** A node as GET /v1/workflows/:id shows it: what every node has, and its kind's fields (NodeKind.view). */
export interface NodeView {
  id: string;
  /** Absent for a task. */
  kind?: string;
  state: NodeState;
  dependsOn: string[];
  /** A task's agent type. */
  type?: string;
  /** A task's pool, once routed. */
  pool?: string;
  /** A task's attempts so far. */
  attempts?: number;
  startedAt?: string;
  finishedAt?: string;
  result?: unknown;
  error?: string;
  /** Present when a task node declares a compensation. */
  compensation?: { type: string; state: CompensationState };
  /** A sleep node's wake time. */
  wakeAt?: string;
  /** A signal node's name, and when it stops waiting. */
  name?: string;
  timeoutAt?: string;
  /** A map node's items at once, and its items so far. */
  concurrency?: number;
  items?: MapItemCounts;
}

export interface CompensationView extends Omit<CompensationEntry, 'at'> {
  type: string;
  at: string;
}

export interface RunSummary {
  id: string;
  name: string;
  state: RunState;
}

/** A run without its nodes: what the list answers, a few hundred bytes whatever the run's size. */
export interface RunOverview extends RunSummary {
  /** Why the run stopped (the node that failed, or the cancel). */
  reason?: string;
  createdAt: string;
  finishedAt?: string;
  progress: { total: number; done: number; running: number };
  /** Nodes in each state; they add up to `progress.total`. */
  nodeCounts: NodeCounts;
  /** Compensations that ran to the end, and those that still failed after their retries. */
  compensationCounts: { done: number; failed: number };
}

/** Which nodes a view holds: `limit` nodes from `offset`, in request order; `next` is the next page's offset, absent on the last page. */
export interface NodePageInfo {
  offset: number;
  limit: number;
  next?: number;
}

export interface RunView extends RunOverview {
  nodes: NodeView[];
  nodePage: NodePageInfo;
  /** Compensations in the order they settled. */
  compensations: CompensationView[];
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function runOverview(meta: RunMeta): RunOverview {
  return {
    id: meta.id,
    name: meta.name,
    state: meta.state,
    ...(meta.reason ? { reason: meta.reason } : {}),
    createdAt: iso(meta.createdAt)!,
    ...(meta.finishedAt ? { finishedAt: iso(meta.finishedAt)! } : {}),
    progress: { total: meta.total, done: meta.done, running: meta.inflight },
    nodeCounts: { ...meta.counts },
    compensationCounts: { done: meta.compensationsRan - meta.compensationsFailed, failed: meta.compensationsFailed },
  };
}

export function nodeView(id: string, def: StoredNode, state: NodeState | undefined, info: NodeInfo = {}, result?: { value: unknown }, compensation?: CompensationState, kind = kindOf(def)): NodeView {
  const view: NodeView = { id, ...(def.kind && def.kind !== DEFAULT_NODE_KIND ? { kind: def.kind } : {}), state: state ?? 'pending', dependsOn: def.dependsOn, ...kind?.view(def, info, compensation) };
  if (info.startedAt !== undefined) view.startedAt = iso(info.startedAt)!;
  if (info.finishedAt !== undefined) view.finishedAt = iso(info.finishedAt)!;
  if (result) view.result = result.value;
  if (info.error) view.error = info.error;
  return view;
}

/**
 * A run's view from its meta, one page of nodes (`offset`, `limit` as asked) and its compensation
 * log; `logNodes` holds the definitions of the nodes the log names (for their compensation type).
 */
export function runView(
  meta: RunMeta,
  page: NodePage,
  offset: number,
  limit: number,
  log: readonly CompensationEntry[],
  logNodes: ReadonlyMap<string, StoredNode>,
  kinds: (def: StoredNode) => NodeKind | undefined = kindOf,
): RunView {
  const nodes: NodeView[] = [];
  for (const id of page.ids) {
    const def = page.nodes.get(id);
    if (!def) continue;
    nodes.push(nodeView(id, def, page.states.get(id), page.info.get(id), page.results.has(id) ? { value: page.results.get(id) } : undefined, page.compensations.get(id), kinds(def)));
  }
  const end = offset + page.ids.length;
  return {
    ...runOverview(meta),
    nodes,
    nodePage: { offset, limit, ...(limit > 0 && page.ids.length === limit && end < meta.total ? { next: end } : {}) },
    compensations: log.map(({ at, ...e }) => ({ ...e, type: (page.nodes.get(e.node) ?? logNodes.get(e.node))?.compensate?.type ?? '?', at: iso(at)! })),
  };
}
