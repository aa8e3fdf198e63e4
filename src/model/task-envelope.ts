/**
 * What a task's BullMQ job carries: the validated payload plus what the agent needs to run it.
 * The agent re-validates the envelope: a job written by hand or by an older version must not
 * take it down.
 */
import { z } from 'zod';
import { STRATEGIES } from './routing.ts';
import { backoffSchema } from './backoff.ts';

export const envelopeSchema = z.object({
  payload: z.unknown(),
  /** Set only when the task overrides its type's timeoutMs (the agent knows the default). */
  timeoutMs: z.number().int().positive().optional(),
  /** idempotencyKey given by the producer, passed to the handler (defaults to the task id). */
  key: z.string().optional(),
  tags: z.array(z.string()).optional(),
  /** What the producer asked of routing, kept so the task can be routed again (parked, re-routed, replayed). */
  route: z.object({ pool: z.string().optional(), strategy: z.enum(STRATEGIES).optional(), version: z.string().optional() }).optional(),
  /** Errors of earlier lives of a replayed task, oldest first. */
  previousErrors: z.array(z.string()).optional(),
  /** The task's resolved retry policy, set only when it overrides its type's (kept small: it travels with every fetch). */
  backoff: backoffSchema.optional(),
  /** Set on the tasks of a workflow: the run, the node, whether this is the node's compensation, and a map item's index. */
  /** `undo`: the task is the node's compensation (the stored name, kept for jobs already written). */
  workflow: z.object({ run: z.string(), node: z.string(), undo: z.boolean().optional(), item: z.number().int().min(0).optional() }).optional(),
  /** Where its final view is POSTed when it ends (the request's callback). */
  callback: z.object({ url: z.string() }).optional(),
  /** The task's concurrency key, and its own limit per key when it overrides its type's (src/task/key-slots.ts). */
  concurrency: z.object({ key: z.string(), limit: z.number().int().positive().optional() }).optional(),
  /** The W3C trace context of the span that enqueued it (src/config/tracing.ts), when tracing is on. */
  trace: z.object({ traceparent: z.string().max(128).optional(), tracestate: z.string().max(512).optional() }).optional(),
  /** Results of the node's dependencies (of the node itself, for a compensation), by node id. */
  deps: z.record(z.string(), z.unknown()).optional(),
  /** The routing decision, compacted (model/routing.ts compactDecision; absent in the common case): read it with expandDecision. */
  routing: z.object({
    strategy: z.enum([...STRATEGIES, 'fixed']),
    pool: z.string(),
    candidates: z.array(z.string()).optional(),
    reason: z.string().optional(),
  }).optional(),
});

export type TaskEnvelope = z.output<typeof envelopeSchema>;

/** Where a workflow's task stands, as its handler is told (ctx.workflow; an HTTP worker's lease). */
export interface WorkflowPlace {
  runId: string;
  nodeId: string;
  compensating: boolean;
  item?: number;
}

export function workflowPlace(w: NonNullable<TaskEnvelope['workflow']>): WorkflowPlace {
  return { runId: w.run, nodeId: w.node, compensating: w.undo === true, ...(w.item !== undefined ? { item: w.item } : {}) };
}
