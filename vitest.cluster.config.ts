/**
 * The cluster suite (`npm run test:cluster`): the integration and end-to-end tests of tasks,
 * routing, breakers, the registry, agents, workflows and dead letters, schedules and flow control
 * (concurrency keys, fair order, rates, throttle and debounce), the batched fetch, completion and
 * add, batch handlers, the worker protocol over HTTP, the CLI, the dashboard and
 * the examples, run again against a local 3-master Redis Cluster (tests/support/cluster-setup.ts),
 * plus the cluster's own tests (failover).
 * Tests that restart or reconfigure a single Redis (outages, durability) stay in `npm test` only.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

export default defineConfig({
  test: {
    ...base.test,
    include: [
      'tests/integration/{agent,agent-breaker,agent-health,api,breaker,client,metrics,producer,rate-limit,registry,routing,workflow,workflow-repair,concurrency-key,fair-order,rate-limits,throttle-debounce,schedules,client-schedules,sleep-node,signal-node,map-node,events,callbacks,batched-worker,batch-handler,local-queue,worker-protocol}.test.ts',
      'tests/e2e/{task-flow,fleet,breaker,breaker-watch,dead-letters,pool-loss,workflow,examples,cli,dashboard}.test.ts',
      'tests/cluster/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**'],
    globalSetup: ['tests/support/cluster-setup.ts'],
    outputFile: { json: 'test-output/vitest-cluster.json' },
  },
});
