/**
 * For the runnable examples: a whole Switchyard in this one process (the API and the agents you
 * give it) on REDIS_URL (default 127.0.0.1:6379) under a fresh key prefix, and a way to tear it
 * down and delete its keys. In production these run as separate processes (`switchyard api`,
 * `switchyard agent <type>`); the library calls are the same.
 */
import { randomBytes } from 'node:crypto';
import { Agent, Catalogue, createClient, createLogger, createRedis, loadConfig, type AgentType, type SwitchyardClient, type WorkerDefinition, startApi, deleteKeysUnder } from '../src/index.ts';

export interface AgentSpec {
  definition: WorkerDefinition;
  pool?: string;
  weight?: number;
  concurrency?: number;
}

export interface LocalSystem<Ts extends readonly AgentType[]> {
  client: SwitchyardClient<Ts>;
  url: string;
  stop(): Promise<void>;
}

export async function startLocalSystem<const Ts extends readonly AgentType[]>(types: Ts, agents: readonly AgentSpec[]): Promise<LocalSystem<Ts>> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `example-${randomBytes(3).toString('hex')}`;
  // Fast heartbeats and checks, so the example sees health and breaker changes within a second.
  const config = loadConfig({
    SWITCHYARD_PREFIX: prefix, PORT: '0', LOG_LEVEL: 'silent',
    SWITCHYARD_HEARTBEAT_MS: '200', SWITCHYARD_AGENT_TTL_MS: '1000', SWITCHYARD_HEALTH_INTERVAL_MS: '100',
    // A pool that cannot take work loses its waiting tasks to the others after 1 s (default 10 s).
    SWITCHYARD_REROUTE_GRACE_MS: '1000',
  });
  const log = createLogger(config);
  const api = await startApi({ config, catalogue: new Catalogue(types), redisUrl, log });
  const running = await Promise.all(
    agents.map((a) => Agent.start({ definition: a.definition, redisUrl, config, log, concurrency: a.concurrency ?? 8, ...(a.pool ? { pool: a.pool } : {}), ...(a.weight ? { weight: a.weight } : {}) })),
  );
  const client = createClient({ url: api.url, types });
  // Routing needs the agents in the API's fleet snapshot: wait until every one is listed HEALTHY.
  for (let i = 0; (await client.agents({ health: 'HEALTHY' })).length < running.length; i++) {
    if (i > 200) throw new Error('the agents did not become HEALTHY within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    client,
    url: api.url,
    async stop() {
      await Promise.all(running.map((a) => a.close(0)));
      await api.close();
      const redis = createRedis(redisUrl, 'blocking');
      await deleteKeysUnder(redis, prefix);
      await redis.quit();
    },
  };
}
