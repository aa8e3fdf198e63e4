/**
 * A node's condition: `when: { node?, path, op, value }` compares a value in one dependency's result
 * (`path`, dot-separated: `score`, `items.0.price`; empty: the whole result) with `value`. A node whose
 * condition is false is skipped, and so are the nodes that depend only on skipped nodes. `node` names
 * the dependency; a node with one dependency may leave it out.
 */
import { z } from 'zod';
import type { FieldIssue } from './errors.ts';
import { nodeIdSchema } from './workflow-node.ts';

export const CONDITION_OPS = ['==', '!=', '>', '>=', '<', '<=', 'exists'] as const;

export const conditionSchema = z.strictObject({
  node: nodeIdSchema.optional(),
  path: z.string().max(500).regex(/^$|^[^.]+(\.[^.]+)*$/, 'dot-separated keys or indexes, e.g. score or items.0.price').default(''),
  op: z.enum(CONDITION_OPS),
  /** Compared with the value at `path` (JSON); not used by `exists`. */
  value: z.unknown().optional(),
});

export type Condition = z.output<typeof conditionSchema>;

/** The dependency a condition reads, or an issue: it must be one of the node's dependencies. */
export function conditionNode(when: Condition, dependsOn: readonly string[], base: string, issues: FieldIssue[]): string | undefined {
  if (when.node === undefined) {
    if (dependsOn.length === 1) return dependsOn[0];
    issues.push({ path: `${base}.when.node`, message: dependsOn.length === 0 ? 'a node without dependencies has no result to test' : `name the dependency whose result it tests (one of ${dependsOn.join(', ')})` });
    return undefined;
  }
  if (!dependsOn.includes(when.node)) issues.push({ path: `${base}.when.node`, message: `${JSON.stringify(when.node)} is not one of the node's dependencies (${dependsOn.join(', ') || 'none'})` });
  return when.node;
}

/** The value at a dot path of a JSON value (undefined when it is not there). */
export function valueAt(value: unknown, path: string): unknown {
  if (path === '') return value;
  let v = value;
  for (const key of path.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Whether a condition holds on a dependency's result. Ordering compares numbers with numbers and strings with strings; anything else is false. */
export function conditionHolds(when: Condition, result: unknown): boolean {
  const v = valueAt(result, when.path);
  const w = when.value;
  switch (when.op) {
    case 'exists':
      return v !== undefined && v !== null;
    case '==':
      return JSON.stringify(v) === JSON.stringify(w);
    case '!=':
      return JSON.stringify(v) !== JSON.stringify(w);
    default: {
      const comparable = (typeof v === 'number' && typeof w === 'number') || (typeof v === 'string' && typeof w === 'string');
      if (!comparable) return false;
      const [a, b] = [v as number | string, w as number | string];
      return when.op === '>' ? a > b : when.op === '>=' ? a >= b : when.op === '<' ? a < b : a <= b;
    }
  }
}
