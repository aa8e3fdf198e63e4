/**
 * The task node kind, in the engine: a ready node is routed *now* (late binding), claimed for the
 * pool chosen, and added as a job to that pool's queue with its dependencies' results (`ctx.deps`);
 * an agent settles it (src/agent/processor.ts). A compensation is a task too. Job ids are
 * deterministic (`<runId>.<node>`, `.undo` for a compensation), so a repeated add is a no-op.
 */
import type { TraceCarrier } from '../config/tracing.ts';
import type { Job } from 'bullmq';
import { z } from 'zod';
import { asTaskNode } from '../model/workflow-definition.ts';
import { taskNode as definition } from '../model/task-node.ts';
import { keys } from '../redis/keys.ts';
import { COMPENSATION_STATES } from '../model/workflow-states.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { nodeJobId } from '../model/task-id.ts';
import type { PreparedTask } from '../task/producer.ts';
import type { CancelMessage } from '../task/cancel.ts';
import type { NodeContext, NodeKind, NodeProgress } from './node-kind.ts';
import type { NodeInfo, RunRecord, Step, StoredNode } from './run-store.ts';

/** BullMQ states of a job that has not started. */
export const NOT_STARTED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/** The nodes whose results a node's task carries: its dependencies; for a compensation, the node itself. */
const depsOf = (def: StoredNode, id: string, step: Step): readonly string[] => (step === 'node' ? def.dependsOn : [id]);

export const taskKind: NodeKind = {
  ...definition,

  async start(ctx, runId, step, nodes) {
    const built = new Map<string, PreparedTask>();
    const info = new Map<string, NodeInfo>();
    const trace = await ctx.runTrace(runId);
    for (const [id, def] of nodes) {
      const task = build(ctx, runId, id, def, step, trace);
      if (!task) continue;
      built.set(id, task);
      info.set(id, { pool: task.routing.pool });
    }
    const claimed = await ctx.store.claim(runId, step, info);
    if (claimed.length === 0) return { claimed };
    const results = await ctx.store.results(runId, [...new Set(claimed.flatMap((id) => depsOf(nodes.get(id)!, id, step)))]);
    await addTasks(ctx, claimed.map((id) => withDeps(built.get(id)!, depsOf(nodes.get(id)!, id, step), (d) => results[d])));
    return { claimed };
  },

  async takeBack(ctx, rec, id, abort) {
    const job = await locate(ctx, rec, id, 'node');
    if (!job) return false;
    const jobState = await job.getState();
    if (NOT_STARTED.has(jobState)) {
      try {
        await job.remove();
        return true;
      } catch {
        return false; // it started meanwhile: it runs to its end (or is aborted next time)
      }
    }
    if (jobState === 'active' && abort) {
      const message: CancelMessage = { kind: 'cancel', taskId: job.id!, reason: 'workflow cancelled' };
      await ctx.redis.publish(keys(ctx.prefix).taskEvents, JSON.stringify(message));
    }
    return false;
  },

  async inspect(ctx, rec, id, step): Promise<NodeProgress> {
    const job = await locate(ctx, rec, id, step);
    if (!job) return { state: 'missing' };
    const state = await job.getState();
    const info = { attempts: job.attemptsMade, ...(job.processedOn ? { startedAt: job.processedOn } : {}) };
    if (state === 'completed') return { state: 'ended', outcome: 'done', payload: JSON.stringify(job.returnvalue ?? null), info };
    if (state === 'failed') return { state: 'ended', outcome: 'dead', payload: job.failedReason || 'failed', info };
    return { state: 'running' };
  },

  async restart(ctx, rec, id, step) {
    const def = rec.nodes.get(id)!;
    const task = build(ctx, rec.meta.id, id, def, step, await ctx.runTrace(rec.meta.id));
    if (task) await addTasks(ctx, [withDeps(task, depsOf(def, id, step), (d) => rec.results.get(d))]);
  },

  viewSchema: z.strictObject({
    type: z.string(),
    pool: z.string().optional(),
    attempts: z.number().int().min(0).optional(),
    compensation: z.strictObject({ type: z.string(), state: z.enum(COMPENSATION_STATES) }).optional(),
  }),

  view(def, info, compensation) {
    const task = asTaskNode(def);
    return {
      type: task.type,
      ...(info.pool ? { pool: info.pool } : {}),
      ...(info.attempts !== undefined ? { attempts: info.attempts } : {}),
      ...(task.compensate ? { compensation: { type: task.compensate.type, state: compensation ?? 'pending' } } : {}),
    };
  },
};

/** The task of a node (or its compensation), routed now; undefined (and the node settled dead) if its type is no longer declared. */
function build(ctx: NodeContext, runId: string, id: string, def: StoredNode, step: Step, trace: TraceCarrier | undefined): PreparedTask | undefined {
  const node = asTaskNode(def);
  const spec = step === 'node' ? { type: node.type, payload: node.payload, options: node } : node.compensate && { ...node.compensate, options: {} };
  const type = spec && ctx.catalogue.find(spec.type);
  if (!spec || !type) {
    void ctx.store.settle(runId, step, id, 'dead', `agent type ${spec?.type ?? '?'} is not declared any more`, {}).catch(() => undefined);
    return undefined;
  }
  const task = ctx.producer.build(spec.options, type, spec.payload, nodeJobId(runId, id, step === 'compensation'));
  task.envelope.workflow = { run: runId, node: id, ...(step === 'compensation' ? { undo: true } : {}) };
  if (trace) task.envelope.trace = trace;
  return task;
}

/** Adds tasks to their pools' queues, one bulk add per queue (a repeated job id is a no-op). */
export async function addTasks(ctx: NodeContext, tasks: readonly PreparedTask[]): Promise<void> {
  const byQueue = new Map<string, PreparedTask[]>();
  for (const t of tasks) byQueue.set(t.queue, [...(byQueue.get(t.queue) ?? []), t]);
  await Promise.all(
    [...byQueue.values()].map(async (list) => {
      const first = list[0]!;
      const queue = await ctx.queues.forWriting({ type: first.type.name, pool: first.routing.pool });
      await queue.addBulk(list.map((t) => ({ name: t.type.name, data: t.envelope, opts: t.opts })));
    }),
  );
}

/** The job of a queued node (or compensation), wherever routing or a move put it. */
async function locate(ctx: NodeContext, rec: RunRecord, id: string, step: Step): Promise<Job<TaskEnvelope> | undefined> {
  const def = rec.nodes.get(id);
  const node = def && asTaskNode(def);
  const type = step === 'node' ? node?.type : node?.compensate?.type;
  if (!type) return undefined;
  const pool = step === 'node' ? rec.info.get(id)?.pool : undefined;
  return (await ctx.queues.find(type, nodeJobId(rec.meta.id, id, step === 'compensation'), pool)) as Job<TaskEnvelope> | undefined;
}

/** The task with its dependencies' results (`ctx.deps`), read through `result`. */
function withDeps(task: PreparedTask, deps: readonly string[], result: (node: string) => unknown): PreparedTask {
  if (deps.length > 0) task.envelope.deps = Object.fromEntries(deps.map((d) => [d, result(d) ?? null]));
  return task;
}
