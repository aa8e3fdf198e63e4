/**
 * A Switchyard producer as an API process holds it: the fleet snapshot (registry, pool backlogs,
 * breakers) refreshed in the background and a TaskProducer routing every task through it.
 */
import type { RedisConnection } from '../src/redis/connection.ts';
import { Catalogue, createLogger, loadConfig, type AgentType, type Config } from '../src/index.ts';
import { BreakerWatch } from '../src/breaker/watch.ts';
import { policyOf } from '../src/model/catalogue.ts';
import { createRedis } from '../src/redis/connection.ts';
import { Registry } from '../src/registry/registry.ts';
import { FleetRouter } from '../src/routing/router.ts';
import { FleetSnapshot } from '../src/routing/snapshot.ts';
import { PoolQueues } from '../src/task/pool-queues.ts';
import { TaskProducer } from '../src/task/producer.ts';
import { AckAudit } from '../src/task/ack-audit.ts';
import { Dispatcher } from '../src/routing/dispatcher.ts';

export const silent = createLogger({ logLevel: 'silent', logPretty: false });

export interface BenchProducer {
  config: Config;
  redis: RedisConnection;
  background: RedisConnection;
  catalogue: Catalogue;
  queues: PoolQueues;
  registry: Registry;
  snapshot: FleetSnapshot;
  router: FleetRouter;
  producer: TaskProducer;
  /** What the API keeps of its recent acknowledgements, to find them again after a Redis restart. */
  acks: AckAudit;
  close(): Promise<void>;
}

/** With `dispatch`, it also moves parked and stranded tasks, as the API's leased dispatcher does. */
export async function startProducer(redisUrl: string, prefix: string, types: readonly AgentType[], env: Record<string, string> = {}, dispatch = false): Promise<BenchProducer> {
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  const redis = createRedis(redisUrl, 'client');
  const background = createRedis(redisUrl, 'blocking');
  const subscriber = createRedis(redisUrl, 'blocking');
  await new Promise((r) => redis.once('ready', r));
  const catalogue = new Catalogue(types);
  const queues = new PoolQueues(redis, prefix);
  const snapshotQueues = new PoolQueues(background, prefix);
  const watch = new BreakerWatch(background, subscriber, prefix, (name) => policyOf(catalogue, name));
  const registry = new Registry(background, prefix);
  const snapshot = new FleetSnapshot(registry, snapshotQueues, watch, subscriber, prefix, silent);
  await watch.start();
  await snapshot.start();
  const router = new FleetRouter(snapshot, catalogue);
  const acks = new AckAudit(redis, prefix, queues, silent);
  const producer = new TaskProducer({ redis, queues, catalogue, router, config, backlog: (t) => snapshot.backlog(t), written: (queue, ids) => acks.record(queue, ids) });
  const dispatcher = dispatch
    ? new Dispatcher({
        queues: snapshotQueues, router, snapshot, catalogue, log: silent, graceMs: config.rerouteGraceMs,
        stalled: { connection: background, prefix, lockMs: config.lockMs, stalledIntervalMs: config.stalledIntervalMs, maxStalled: config.maxStalled },
      })
    : undefined;
  let dispatching: Promise<void> = Promise.resolve();
  const timer = dispatcher ? setInterval(() => (dispatching = dispatching.then(() => dispatcher.run()).catch(() => undefined)), 250) : undefined;
  return {
    config, redis, background, catalogue, queues, registry, snapshot, router, producer, acks,
    async close() {
      clearInterval(timer);
      await dispatching;
      await dispatcher?.close();
      await snapshot.stop();
      await watch.stop();
      await Promise.all([queues.close(), snapshotQueues.close()]);
      await Promise.all([redis, background, subscriber].map((c) => c.quit()));
    },
  };
}
