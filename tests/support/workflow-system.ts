/**
 * A workflow engine, its runs and a `step` agent on the shared Redis under the file's own prefix,
 * started before the file's tests and stopped after them: what the workflow node tests share.
 */
import { afterAll, beforeAll } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { createRedis, waitForReady } from '../../src/redis/connection.ts';
import { fixedRouter } from '../../src/routing/fixed.ts';
import { PoolQueues } from '../../src/task/pool-queues.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import { WorkflowEngine } from '../../src/workflow/engine.ts';
import type { NodeKind } from '../../src/workflow/node-kind.ts';
import { WorkflowRuns } from '../../src/workflow/runs.ts';
import { REDIS_URL, useRedisPrefix } from './redis.ts';
import { silentLog, testConfig } from './system.ts';
import { step, stepWorker } from './workflow-types.ts';

export function useWorkflowSystem(tag: string, kinds?: readonly NodeKind[]) {
  const { prefix } = useRedisPrefix(tag);
  const config = testConfig(prefix);
  const redis = createRedis(REDIS_URL, 'client');
  const subscriber = createRedis(REDIS_URL, 'blocking');
  const background = createRedis(REDIS_URL, 'blocking');
  const catalogue = new Catalogue([step]);
  const queues = new PoolQueues(redis, prefix);
  const producer = new TaskProducer({ redis, queues, catalogue, router: fixedRouter, config });
  const engine = new WorkflowEngine({ redis, subscriber, queues, producer, catalogue, prefix, keepRunsS: 60, log: silentLog, ...(kinds ? { kinds } : {}) });
  const runs = new WorkflowRuns({ redis, prefix, catalogue, engine, maxNodes: 100, idempotencyTtlS: 60, keepRunsS: 60 });
  let agent: Agent | undefined;

  beforeAll(async () => {
    await waitForReady(redis, 10_000);
    await engine.start(background);
    agent = await Agent.start({ definition: stepWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10 });
  });

  afterAll(async () => {
    await agent?.close(0);
    await Promise.all([runs.close(), engine.stop(), queues.close()]);
    redis.disconnect();
    subscriber.disconnect();
    background.disconnect();
  });

  return { prefix, redis, catalogue, engine, runs };
}
