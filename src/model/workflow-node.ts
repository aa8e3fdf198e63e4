/**
 * What every workflow node is, whatever its kind: an id, its dependencies, and the fields of its kind
 * (a task's type and payload, a sleep's duration). A kind is a NodeDefinition here (its request shape
 * and checks, pure) and a NodeKind in src/workflow/node-kind.ts (how the engine starts and settles it).
 */
import { z } from 'zod';
import type { Catalogue } from './catalogue.ts';
import type { FieldIssue } from './errors.ts';

/** Node ids become part of BullMQ job ids (`<runId>.<nodeId>`), which must not hold `:` or `.`. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const nodeIdSchema = z.string().regex(NODE_ID_PATTERN, 'letters, digits, _ and - (1-64 characters)');

/** A node without `kind` is a task. */
export const DEFAULT_NODE_KIND = 'task';

/** A node's fields but its id (as stored). Fields beyond these belong to its kind, which reads them (see TaskNodeSpec). */
export interface NodeFields {
  /** Absent for a task. */
  kind?: string;
  dependsOn: string[];
  /** Present when the node runs only if a condition on a dependency's result holds (model/condition.ts). */
  when?: { node?: string; path: string; op: string; value?: unknown };
  /** Present when the node has a compensation (a task's): its type and validated payload. */
  compensate?: { type: string; payload: unknown };
  readonly [field: string]: unknown;
}

/** A validated node. */
export interface NodeSpec extends NodeFields {
  id: string;
}

/** What a check may look things up in. */
export interface NodeCheckContext {
  catalogue: Catalogue;
  /** Names a kind keeps unique within a run (a signal's name) -> the path of the node that took it. */
  names: Map<string, string>;
}

/** A node kind's request shape and checks. */
export interface NodeDefinition {
  /** The `kind` a request names it by. */
  readonly name: string;
  /** The whole node's request shape, `id`, `kind` and `dependsOn` included (a strict object). */
  readonly schema: z.ZodType;
  /** Checks beyond the schema on the parsed node (`base` is its path, `nodes[3]`); pushes issues, returns the node to store. */
  check(parsed: unknown, base: string, ctx: NodeCheckContext, issues: FieldIssue[]): NodeSpec;
}

/** The kind a node names (`kind` if it is a string, else a task). */
export const kindName = (node: unknown): string =>
  typeof node === 'object' && node !== null && typeof (node as { kind?: unknown }).kind === 'string' ? (node as { kind: string }).kind : DEFAULT_NODE_KIND;
