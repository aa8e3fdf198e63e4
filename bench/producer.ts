/**
 * A Switchyard producer as an API process holds it: the API's services without HTTP
 * (buildApiServices: the fleet snapshot of registry, pool backlogs and breakers refreshed in the
 * background, and a TaskProducer routing every task through it), from the public entry.
 */
import {
  buildApiServices, Catalogue, connectApi, createLogger, loadConfig, startApiChores, stopApiServices, waitForReady,
  type AgentType, type ApiServices, type Config,
} from '../src/index.ts';

export const silent = createLogger({ logLevel: 'silent', logPretty: false });

export type BenchProducer = ApiServices & { config: Config; close(): Promise<void> };

/** With `dispatch`, it also runs the API's leased chores: moving parked and stranded tasks, expiring agents. */
export async function startProducer(redisUrl: string, prefix: string, types: readonly AgentType[], env: Record<string, string> = {}, dispatch = false): Promise<BenchProducer> {
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  const connections = connectApi(redisUrl, silent);
  await waitForReady(connections.redis, 10_000);
  const services = await buildApiServices(connections, config, new Catalogue(types), silent);
  const chores = dispatch ? startApiChores(services, config, silent) : undefined;
  return {
    ...services,
    config,
    close: () => (chores ? chores.stop() : stopApiServices(services)),
  };
}
