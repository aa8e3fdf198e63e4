/** How a workflow run looks from outside (GET /v1/workflows/:id), built from its record. */
import type { CompensationEntry, NodeState, RunRecord, RunState, UndoState } from './run-store.ts';

export interface NodeView {
  id: string;
  type: string;
  state: NodeState;
  dependsOn: string[];
  pool?: string;
  attempts?: number;
  startedAt?: string;
  finishedAt?: string;
  result?: unknown;
  error?: string;
  /** Present when the node declares a compensation. */
  compensation?: { type: string; state: UndoState };
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

export interface RunView extends RunSummary {
  /** Why the run stopped (the node that failed, or the cancel). */
  reason?: string;
  createdAt: string;
  finishedAt?: string;
  progress: { total: number; done: number; running: number };
  nodes: NodeView[];
  /** Compensations in the order they settled. */
  compensations: CompensationView[];
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function runView(rec: RunRecord): RunView {
  const { meta } = rec;
  const nodes: NodeView[] = [];
  for (const [id, def] of rec.nodes) {
    const info = rec.info.get(id) ?? {};
    const state = rec.states.get(id) ?? 'pending';
    const view: NodeView = { id, type: def.type, state, dependsOn: def.dependsOn };
    if (info.pool) view.pool = info.pool;
    if (info.attempts !== undefined) view.attempts = info.attempts;
    if (info.startedAt !== undefined) view.startedAt = iso(info.startedAt)!;
    if (info.finishedAt !== undefined) view.finishedAt = iso(info.finishedAt)!;
    if (rec.results.has(id)) view.result = rec.results.get(id);
    if (info.error) view.error = info.error;
    if (def.compensate) view.compensation = { type: def.compensate.type, state: rec.undo.get(id) ?? 'pending' };
    nodes.push(view);
  }
  return {
    id: meta.id,
    name: meta.name,
    state: meta.state,
    ...(meta.reason ? { reason: meta.reason } : {}),
    createdAt: iso(meta.createdAt)!,
    ...(meta.finishedAt ? { finishedAt: iso(meta.finishedAt)! } : {}),
    progress: { total: meta.total, done: meta.done, running: meta.inflight },
    nodes,
    compensations: rec.log.map(({ at, ...e }) => ({ ...e, type: rec.nodes.get(e.node)?.compensate?.type ?? '?', at: iso(at)! })),
  };
}
