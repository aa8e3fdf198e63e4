/**
 * The signal node: `{ id, kind: "signal", name, timeoutMs?, onTimeout?, schema?, dependsOn }` waits,
 * once its dependencies are done, for `POST /v1/workflows/:id/signals/:name` to deliver a JSON
 * payload (checked against `schema`, a JSON Schema, when it has one), which becomes its result. A
 * signal sent before the node is reached is kept and delivered when it is. After `timeoutMs` without
 * one, the node fails (the saga compensates) or, with `onTimeout: "continue"`, is done with a null
 * result. Names are unique within a run. The engine side is src/workflow/signal-node.ts.
 */
import { z } from 'zod';
import type { FieldIssue } from './errors.ts';
import { MAX_SLEEP_MS } from './sleep-node.ts';
import { toFieldIssues } from './validation.ts';
import { nodeIdSchema, type NodeDefinition, type NodeSpec } from './workflow-node.ts';
import { conditionSchema } from './condition.ts';

export const SIGNAL_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

export const signalNodeSchema = z.strictObject({
  id: nodeIdSchema,
  kind: z.literal('signal'),
  /** What the signal is called in its URL: letters, digits, _ . - (unique within the run). */
  name: z.string().regex(SIGNAL_NAME_PATTERN, 'letters, digits, _ . - (1-100 characters)'),
  /** How long it waits once reached; without it, until the run is cancelled. */
  timeoutMs: z.number().int().min(1).max(MAX_SLEEP_MS).optional(),
  /** What a timeout does: fail the node (the saga compensates), or go on with a null result. */
  onTimeout: z.enum(['fail', 'continue']).default('fail'),
  /** A JSON Schema the delivered payload must satisfy. */
  schema: z.record(z.string(), z.unknown()).optional(),
  dependsOn: z.array(nodeIdSchema).max(10_000).default([]),
  /** Runs only if this holds on a dependency's result; else the node is skipped (model/condition.ts). */
  when: conditionSchema.optional(),
});

export type SignalNodeSpec = z.output<typeof signalNodeSchema>;

/** The zod schema a signal's payload is checked with (from its JSON Schema), or the error why none can be made. */
export function payloadCheck(schema: Record<string, unknown> | undefined): z.ZodType | string {
  if (!schema) return z.unknown();
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Issues of a payload delivered to a signal (paths under `payload`), or none. */
export function payloadIssues(schema: Record<string, unknown> | undefined, payload: unknown): FieldIssue[] {
  const check = payloadCheck(schema);
  if (typeof check === 'string') return [{ path: 'payload', message: `the signal's schema cannot be used: ${check}` }];
  const parsed = check.safeParse(payload);
  return parsed.success ? [] : toFieldIssues(parsed.error, 'payload');
}

export const signalNode: NodeDefinition = {
  name: 'signal',
  schema: signalNodeSchema,
  check(parsed, base, ctx, issues): NodeSpec {
    const node = parsed as SignalNodeSpec;
    const taken = ctx.names.get(node.name);
    if (taken) issues.push({ path: `${base}.name`, message: `signal name ${JSON.stringify(node.name)} is already ${taken}'s: names are unique within a run` });
    else ctx.names.set(node.name, base);
    const check = payloadCheck(node.schema);
    if (typeof check === 'string') issues.push({ path: `${base}.schema`, message: `not a JSON Schema zod can read: ${check}` });
    return node;
  },
};

/** The signal name a stored node answers to: a signal node's `name`. */
export const signalName = (node: { kind?: string; readonly [field: string]: unknown }): string | undefined =>
  node.kind === 'signal' && typeof node.name === 'string' ? node.name : undefined;
