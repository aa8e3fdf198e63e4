/**
 * The workflow engine on its own, built and stopped in one place: pool queues, a producer with the
 * fixed router (every task to the pool it names, else `default`: no registry, fleet snapshot or
 * breakers), the workflow engine, started, and the runs API over it. For benchmarks and for embedding
 * the engine where the fleet router is not wanted; an API process builds the same engine behind the
 * fleet router instead (api-services.ts). The connections are the caller's: stop leaves them open.
 *
 * Layer: wiring. Imports engines, stores, redis, config and the model; imported by index.ts.
 */
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import type { Catalogue } from '../model/catalogue.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { fixedRouter } from '../routing/fixed.ts';
import { PoolQueues } from '../task/pool-queues.ts';
import { TaskProducer } from '../task/producer.ts';
import { WorkflowEngine } from '../workflow/engine.ts';
import { WorkflowRuns } from '../workflow/runs.ts';

/** The fields of Config used here; a whole Config (loadConfig) will do. */
export type WorkflowServicesConfig = Pick<Config, 'prefix' | 'idempotencyTtlS' | 'keepCompleted' | 'maxBatch' | 'maxBacklog' | 'keepWorkflowsS' | 'maxWorkflowNodes'> &
  Partial<Pick<Config, 'waitReplicas'>>;

export interface WorkflowServicesOptions {
  /** Commands, shared by the queues, producer, engine and runs (createRedis role `client`). */
  redis: RedisConnection;
  /** Put in subscriber mode: the engine listens on it for runs that need it (may be shared with other listeners). */
  subscriber: RedisConnection;
  /** A blocking connection (createRedis role `blocking`) for the engine's finalizer worker, which finishes run jobs. */
  background: RedisConnection;
  catalogue: Catalogue;
  config: WorkflowServicesConfig;
  /** How long a finished run stays readable, in seconds; default config.keepWorkflowsS. */
  keepRunsS?: number;
  /** Largest run accepted, in nodes; default config.maxWorkflowNodes. */
  maxNodes?: number;
  /** How long a run's idempotency key holds, in seconds; default config.idempotencyTtlS (tasks always use that). */
  idempotencyTtlS?: number;
  log: Logger;
}

export interface WorkflowServices {
  queues: PoolQueues;
  /** Enqueues tasks (and the engine's task nodes) with the fixed router. */
  producer: TaskProducer;
  /** Started; `engine.store` reads runs' state. */
  engine: WorkflowEngine;
  /** Starts, reads, lists and cancels runs. */
  runs: WorkflowRuns;
  /** Closes the runs, then stops the engine (letting passes under way finish), then closes the queues. */
  stop(): Promise<void>;
}

/**
 * Builds and starts the workflow engine alone: no fleet router, no dispatcher or sweep chore (call
 * `engine.sweep(Date.now())` periodically to repair runs a crashed process left behind). Throws if the
 * engine cannot start, after closing what it built.
 */
export async function buildWorkflowServices(o: WorkflowServicesOptions): Promise<WorkflowServices> {
  const { redis, subscriber, catalogue, config, log } = o;
  const { prefix } = config;
  const keepRunsS = o.keepRunsS ?? config.keepWorkflowsS;
  const queues = new PoolQueues(redis, prefix);
  const producer = new TaskProducer({ redis, queues, catalogue, router: fixedRouter, config });
  const engine = new WorkflowEngine({ redis, subscriber, queues, producer, catalogue, prefix, keepRunsS, log });
  try {
    await engine.start(o.background);
  } catch (err) {
    await engine.stop().catch(() => undefined);
    await queues.close().catch(() => undefined);
    throw err;
  }
  const runs = new WorkflowRuns({
    redis, prefix, catalogue, engine, keepRunsS, waitReplicas: config.waitReplicas,
    maxNodes: o.maxNodes ?? config.maxWorkflowNodes, idempotencyTtlS: o.idempotencyTtlS ?? config.idempotencyTtlS,
  });
  return {
    queues, producer, engine, runs,
    async stop() {
      await runs.close();
      await engine.stop();
      await queues.close();
    },
  };
}
