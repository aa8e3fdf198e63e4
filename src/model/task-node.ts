/**
 * The task node, the workflow node kind every run had before there were others: a task (its agent
 * type's payload and the per-task options) with an id, dependencies and an optional compensation.
 * Its request shape and its checks against the catalogue; the engine side is src/workflow/task-node.ts.
 */
import { z } from 'zod';
import type { FieldIssue } from './errors.ts';
import { checkTaskRequest } from './task-check.ts';
import { KEYED_TASK_OPTIONS, LONE_TASK_OPTIONS, payloadSchema, taskRequestSchema } from './task-request.ts';
import { toFieldIssues } from './validation.ts';
import { nodeIdSchema as nodeId, type NodeCheckContext, type NodeDefinition, type NodeSpec } from './workflow-node.ts';
import { conditionSchema } from './condition.ts';

/** A node takes a task's per-task options, minus those that only make sense for a lone task. */
export const nodeSchema = taskRequestSchema.omit({ ...LONE_TASK_OPTIONS, ...KEYED_TASK_OPTIONS }).extend({
  id: nodeId,
  /** Optional for a task: a node without `kind` is a task. */
  kind: z.literal('task').optional(),
  dependsOn: z.array(nodeId).max(10_000).default([]),
  /** Runs only if this holds on a dependency's result; else the node is skipped (model/condition.ts). */
  when: conditionSchema.optional(),
  /** What compensates for this node once it completed, should the workflow fail: defaults to the node's type and payload. */
  compensate: z.strictObject({ type: taskRequestSchema.shape.type.optional(), payload: payloadSchema.optional() }).optional(),
});

export type TaskNodeSpec = Omit<z.output<typeof nodeSchema>, 'compensate'> & Pick<NodeSpec, 'compensate'>;

export const taskNode: NodeDefinition = {
  name: 'task',
  schema: nodeSchema,
  check: checkTaskNode,
};

/** Its type is declared, its payload and backoff fit the type, its compensation's type and payload too. */
function checkTaskNode(parsed: unknown, base: string, { catalogue }: NodeCheckContext, issues: FieldIssue[]): NodeSpec {
  const { compensate, ...node } = parsed as z.output<typeof nodeSchema>;
  const checked = checkTaskRequest(node, base, catalogue, issues);
  if (checked) node.payload = checked.payload;
  const spec: TaskNodeSpec = node;
  if (compensate) {
    const compensationType = catalogue.find(compensate.type ?? node.type);
    if (!compensationType) issues.push({ path: `${base}.compensate.type`, message: `unknown agent type ${JSON.stringify(compensate.type)}; declared: ${catalogue.names.join(', ')}` });
    else {
      const payload = compensationType.payload.safeParse(compensate.payload === undefined ? node.payload : compensate.payload);
      if (payload.success) spec.compensate = { type: compensationType.name, payload: payload.data };
      else issues.push(...toFieldIssues(payload.error, `${base}.compensate.payload`));
    }
  }
  return spec as NodeSpec;
}
