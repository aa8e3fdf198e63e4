/**
 * The sleep node: `{ id, kind: "sleep", durationMs | until, dependsOn }` waits, once its dependencies
 * are done, for `durationMs` or until the time `until` (one of them), holding no agent and no process;
 * its result is `{ wokeAt }`. The engine side is src/workflow/sleep-node.ts.
 */
import { z } from 'zod';
import type { FieldIssue } from './errors.ts';
import { nodeIdSchema, type NodeDefinition, type NodeSpec } from './workflow-node.ts';
import { conditionSchema } from './condition.ts';

/** The longest sleep: a year. */
export const MAX_SLEEP_MS = 366 * 86_400_000;

export const sleepNodeSchema = z.strictObject({
  id: nodeIdSchema,
  kind: z.literal('sleep'),
  /** How long it sleeps once its dependencies are done. */
  durationMs: z.number().int().min(0).max(MAX_SLEEP_MS).optional(),
  /** Or when it wakes (ISO 8601 with an offset); a time already past wakes it at once. */
  until: z.iso.datetime({ offset: true }).optional(),
  dependsOn: z.array(nodeIdSchema).max(10_000).default([]),
  /** Runs only if this holds on a dependency's result; else the node is skipped (model/condition.ts). */
  when: conditionSchema.optional(),
});

export type SleepNodeSpec = z.output<typeof sleepNodeSchema>;

export const sleepNode: NodeDefinition = {
  name: 'sleep',
  schema: sleepNodeSchema,
  check(parsed, base, _ctx, issues: FieldIssue[]): NodeSpec {
    const node = parsed as SleepNodeSpec;
    if ((node.durationMs === undefined) === (node.until === undefined)) {
      issues.push({ path: `${base}.durationMs`, message: 'give durationMs or until, one of them' });
    } else if (node.until !== undefined && Date.parse(node.until) - Date.now() > MAX_SLEEP_MS) {
      issues.push({ path: `${base}.until`, message: 'at most a year from now' });
    }
    return node;
  },
};

/** When a sleep node that became ready at `now` wakes. */
export const wakeAt = (node: Pick<SleepNodeSpec, 'durationMs' | 'until'>, now: number): number =>
  node.until !== undefined ? Date.parse(node.until) : now + (node.durationMs ?? 0);
