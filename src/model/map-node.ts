/**
 * The map node (dynamic fan-out and fan-in): `{ id, kind: "map", over: "<node>.<path>", type,
 * payloadFrom, concurrency, tolerateFailures, dependsOn }` runs one task of `type` per item of the
 * array at `<path>` in the result of `<node>` (one of its dependencies), at most `concurrency` at once.
 * Each item's payload is the item (or the value at `payloadFrom`'s path in it), checked against the
 * type's schema when the map starts. Its result is the array of the item results, in item order
 * (`null` for an item that failed and was tolerated). An item that fails after its attempts fails the
 * map, unless `tolerateFailures` allows that many. The engine side is src/workflow/map-node.ts.
 */
import { z } from 'zod';
import type { AgentType } from './agent-type.ts';
import { valueAt, conditionSchema } from './condition.ts';
import type { FieldIssue } from './errors.ts';
import { checkTaskOptions } from './task-check.ts';
import { taskRequestSchema } from './task-request.ts';
import { toFieldIssues } from './validation.ts';
import { nodeIdSchema, type NodeDefinition, type NodeSpec } from './workflow-node.ts';

/** The most items one map runs. */
export const MAX_MAP_ITEMS = 10_000;
/** The most items of one map running at once. */
export const MAX_MAP_CONCURRENCY = 1000;

const DOT_PATH = /^[^.]+(\.[^.]+)*$/;

const shape = taskRequestSchema.shape;

export const mapNodeSchema = z.strictObject({
  id: nodeIdSchema,
  kind: z.literal('map'),
  /** `<node>.<path>`: the array in a dependency's result (`<node>` alone: the result itself is the array). */
  over: z.string().max(500).regex(DOT_PATH, '<node id>.<path>, e.g. fetch.items (the node alone: its whole result)'),
  /** The agent type each item runs as. */
  type: shape.type,
  /** What of an item is its payload: `item` (the default), or a path in it, `item.order`. */
  payloadFrom: z.string().max(500).regex(/^item(\.[^.]+)*$/, 'item, or a path in it such as item.order').default('item'),
  concurrency: z.number().int().min(1).max(MAX_MAP_CONCURRENCY).default(10),
  /** Items that may fail (after their attempts) before the map fails; their results are null. */
  tolerateFailures: z.number().int().min(0).max(MAX_MAP_ITEMS).default(0),
  priority: shape.priority,
  attempts: shape.attempts,
  backoff: shape.backoff,
  timeoutMs: shape.timeoutMs,
  pool: shape.pool,
  tags: shape.tags,
  strategy: shape.strategy,
  version: shape.version,
  dependsOn: z.array(nodeIdSchema).max(10_000).default([]),
  /** Runs only if this holds on a dependency's result; else the node is skipped (model/condition.ts). */
  when: conditionSchema.optional(),
});

export type MapNodeSpec = z.output<typeof mapNodeSchema>;

export const mapNode: NodeDefinition = {
  name: 'map',
  schema: mapNodeSchema,
  check(parsed, base, { catalogue }, issues: FieldIssue[]): NodeSpec {
    const node = parsed as MapNodeSpec;
    checkTaskOptions(node, base, catalogue, issues);
    const { source } = mapSource(node.over);
    if (!node.dependsOn.includes(source)) {
      issues.push({ path: `${base}.over`, message: `${JSON.stringify(source)} is not one of the node's dependencies (${node.dependsOn.join(', ') || 'none'}): a map goes over a dependency's result` });
    }
    return node as unknown as NodeSpec;
  },
};

/** The dependency a map reads and the path of the array in its result. */
export function mapSource(over: string): { source: string; path: string } {
  const dot = over.indexOf('.');
  return dot < 0 ? { source: over, path: '' } : { source: over.slice(0, dot), path: over.slice(dot + 1) };
}

/** What a map's items are at run time: their payloads as JSON, or why the map cannot run (the node fails with it). */
export function mapItems(node: Pick<MapNodeSpec, 'over' | 'payloadFrom' | 'type'>, type: AgentType | undefined, result: unknown): { payloads: string[] } | { problem: string } {
  if (!type) return { problem: `agent type ${node.type} is not declared any more` };
  const items = valueAt(result, mapSource(node.over).path);
  if (!Array.isArray(items)) return { problem: `map over ${node.over}: expected an array, found ${describe(items)}` };
  if (items.length > MAX_MAP_ITEMS) return { problem: `map over ${node.over}: ${items.length} items, at most ${MAX_MAP_ITEMS}` };
  const path = node.payloadFrom === 'item' ? '' : node.payloadFrom.slice('item.'.length);
  const payloads: string[] = [];
  for (let i = 0; i < items.length; i++) {
    const parsed = type.payload.safeParse(valueAt(items[i], path));
    if (!parsed.success) {
      const first = toFieldIssues(parsed.error, `item ${i}${path ? `.${path}` : ''}`)[0];
      return { problem: `map over ${node.over}: ${first ? `${first.path}: ${first.message}` : `item ${i} is not a ${type.name} payload`}` };
    }
    payloads.push(JSON.stringify(parsed.data ?? null));
  }
  return { payloads };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing there';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
