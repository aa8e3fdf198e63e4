/**
 * The seam between the workflow engine and what a node is. The engine owns a run's graph (which
 * nodes are ready, when the run stops, compensation order, the sweep's timing); a NodeKind owns how
 * one kind of node is started once ready, taken back when the run stops, inspected and restarted by
 * the sweep, and shown. A task is one kind (task-node.ts); a new kind is one module here plus a line
 * in node-kinds.ts. Every kind settles its nodes through `RunStore.settle`, whose script moves the run.
 */
import type { TraceCarrier } from '../config/tracing.ts';
import type { z } from 'zod';
import type { RedisConnection } from '../redis/connection.ts';
import type { Catalogue } from '../model/catalogue.ts';
import type { Logger } from '../config/logger.ts';
import type { NodeDefinition } from '../model/workflow-definition.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import type { TaskProducer } from '../task/producer.ts';
import type { NodeInfo, Outcome, RunRecord, RunStore, Step, StoredNode, CompensationState } from './run-store.ts';
import type { NodeTimers } from './node-timers.ts';

/** What a kind may use: the engine's store, connection, task machinery and node timers. */
export interface NodeContext {
  readonly store: RunStore;
  /** Timers of nodes (a sleep's wake, a signal's timeout); a due one goes to its kind's onTimer. */
  readonly timers: NodeTimers;
  readonly redis: RedisConnection;
  readonly prefix: string;
  readonly queues: PoolQueues;
  readonly producer: TaskProducer;
  readonly catalogue: Catalogue;
  readonly log: Logger;
  /** The trace context a run's node tasks carry (its start's span), when tracing is on. */
  runTrace(runId: string): Promise<TraceCarrier | undefined>;
}

/** What a kind's start claimed, and (waiting nodes only) until when they need no look. */
export interface Started {
  claimed: readonly string[];
  quietUntil?: number;
}

/**
 * What the sweep found of a queued node's work. A running node may say until when nothing about it
 * can need repair (`quietUntil`, ms: a sleep until it wakes), so the sweep leaves its run alone till then.
 */
export type NodeProgress =
  | { state: 'missing' }
  | { state: 'running'; quietUntil?: number }
  | { state: 'ended'; outcome: Exclude<Outcome, 'skipped'>; payload: string; info: NodeInfo };

/** The fields a kind adds to a node's view (GET /v1/workflows/:id): `type`, `pool`, `attempts`, `compensation` for a task. */
export type KindView = Record<string, unknown>;

export interface NodeKind extends NodeDefinition {
  /**
   * Starts ready nodes of this kind (`step` 'compensation': their compensations): claims them with
   * `ctx.store.claim` (only a claimed node may start: another engine may have taken it) and starts
   * their work. Returns the ids it claimed, and, for nodes that only wait (a sleep, a signal), until
   * when none of them can need a repair: a run with nothing else in flight is left alone by the
   * sweep till then.
   */
  start(ctx: NodeContext, runId: string, step: Step, nodes: ReadonlyMap<string, StoredNode>): Promise<Started>;
  /** The run is stopping: takes back a queued node that has not started (true: settle it skipped); aborts a started one when `abort`. */
  takeBack(ctx: NodeContext, rec: RunRecord, id: string, abort: boolean): Promise<boolean>;
  /** The sweep: where a queued node's work is (its settle may have been lost, or its start cut off). */
  inspect(ctx: NodeContext, rec: RunRecord, id: string, step: Step): Promise<NodeProgress>;
  /** The sweep: starts again a queued node whose work went missing. */
  restart(ctx: NodeContext, rec: RunRecord, id: string, step: Step): Promise<void>;
  /** The kind's fields of a node's view. */
  view(def: StoredNode, info: NodeInfo, compensation: CompensationState | undefined): KindView;
  /** Their shape, for the HTTP contract and the OpenAPI document (a strict object). */
  readonly viewSchema: z.ZodObject;
  /** A node's timer (set with ctx.timers) is due: what the node does then (a sleep wakes, a signal times out). */
  onTimer?(ctx: NodeContext, runId: string, id: string, def: StoredNode, at: number): Promise<void>;
}
