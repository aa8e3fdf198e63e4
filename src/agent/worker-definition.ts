/** What `workers/<type>.ts` exports: an agent type and the handler that does its work. */
import type { WorkflowPlace } from '../model/task-envelope.ts';
import type { z } from 'zod';
import type { AgentType, PayloadOf } from '../model/agent-type.ts';
import type { HealthCheck } from '../health/check.ts';
import type { HealthPolicy } from '../model/health-policy.ts';
import type { Logger } from '../config/logger.ts';
import { batchedHandler, type BatchOptions, type Item, type Results } from './batch-handler.ts';

/** Everything a handler may need besides its payload. Execution is at-least-once: use idempotencyKey. */
export interface TaskContext {
  taskId: string;
  type: string;
  pool: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** How many times this task has started, this run included: more than `attempt` when earlier runs lost their agent (crash, lost lock). */
  runs: number;
  maxAttempts: number;
  /** The producer's idempotencyKey, or the task id: stable across retries and re-deliveries. */
  idempotencyKey: string;
  /** Results of this workflow node's dependencies by node id (for a compensation: the compensated node's own result); empty for a lone task. */
  deps: Readonly<Record<string, unknown>>;
  /** Set when the task is a workflow node: its run, its node id, whether this run is its compensation, and for an item of a map node its index. */
  workflow?: WorkflowPlace;
  /** Fires on timeout, cancellation or shutdown past the grace period. */
  signal: AbortSignal;
  log: Logger;
  progress(value: number | object): Promise<void>;
  /**
   * A breaker shared by every agent, for a downstream this handler calls:
   * `await ctx.breaker('smtp').run(() => send(mail))`. While it is open, run() throws without
   * calling, and the task is delayed until the breaker admits calls again (no attempt is spent).
   */
  breaker(name: string): { run<T>(fn: () => Promise<T> | T): Promise<T> };
}

export type Handler<T extends AgentType> = (
  payload: PayloadOf<T>,
  ctx: TaskContext,
) => Promise<z.input<T['result']>> | z.input<T['result']>;

/** One task of a batch handler's call. */
export type BatchItem<T extends AgentType> = Item<PayloadOf<T>, TaskContext>;
/** One entry per item, in order: its result, or the Error its attempt fails with. */
export type BatchResults<T extends AgentType> = Results<z.input<T['result']>>;
export type BatchHandler<T extends AgentType> = (items: ReadonlyArray<BatchItem<T>>) => Promise<BatchResults<T>> | BatchResults<T>;

export interface WorkerOptions {
  /**
   * The agent's health check, run every interval: resolve when healthy (or with
   * `{degraded: reason}`), throw when not. Default: event-loop lag and recent error rate.
   */
  healthCheck?: HealthCheck;
  /** Overrides of the health policy (interval, timeouts, thresholds) for this type's agents. */
  health?: Partial<HealthPolicy>;
}

export interface WorkerDefinition<T extends AgentType = AgentType> extends WorkerOptions {
  readonly type: T;
  readonly handler: Handler<T>;
}

/**
 * An agent type's worker: `defineWorker(type, handler, options?)` handles one task per call;
 * `defineWorker(type, { batch: { max, waitMs }, ...options }, batchHandler)` hands the handler the tasks
 * the agent has started, many per call (src/agent/batch-handler.ts says what each item gets).
 */
export function defineWorker<T extends AgentType>(type: T, handler: Handler<T>, options?: WorkerOptions): WorkerDefinition<T>;
export function defineWorker<T extends AgentType>(type: T, options: WorkerOptions & { batch: BatchOptions }, handler: BatchHandler<T>): WorkerDefinition<T>;
export function defineWorker<T extends AgentType>(type: T, a: Handler<T> | (WorkerOptions & { batch: BatchOptions }), b?: WorkerOptions | BatchHandler<T>): WorkerDefinition<T> {
  if (typeof a === 'function') return Object.freeze({ type, handler: a, ...(b as WorkerOptions | undefined) });
  const { batch, ...options } = a;
  if (typeof b !== 'function') throw new TypeError(`defineWorker(${type.name}, { batch }, handler): the batch handler is missing`);
  return Object.freeze({ type, handler: batchedHandler(type.name, b as BatchHandler<T>, batch), ...options });
}
