/**
 * Every workflow node kind, by the name a request gives in `kind` (a node without one is a task).
 * Registering a kind: import its module and list it here; validation, the engine, the sweep, the
 * run view and the OpenAPI document all read this list.
 */
import { kindName } from '../model/workflow-definition.ts';
import type { NodeKind } from './node-kind.ts';
import type { StoredNode } from './run-store.ts';
import { taskKind } from './task-node.ts';
import { sleepKind } from './sleep-node.ts';
import { signalKind } from './signal-node.ts';
import { mapKind } from './map-node.ts';

export const NODE_KINDS: readonly NodeKind[] = [taskKind, sleepKind, signalKind, mapKind];

/** Finds the kind of a stored node among `kinds`; undefined for a kind not registered (any more: the engine settles such a node dead). */
export function kindLookup(kinds: readonly NodeKind[]): (def: StoredNode) => NodeKind | undefined {
  const byName = new Map(kinds.map((k) => [k.name, k]));
  return (def) => byName.get(kindName(def));
}

/** The kind of a stored node among the registered kinds. */
export const kindOf = kindLookup(NODE_KINDS);

/** The kind that runs compensations. */
export const COMPENSATION_KIND: NodeKind = taskKind;
