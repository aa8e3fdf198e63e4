/**
 * The API process: the services and chores of wiring/api-services.ts, the HTTP app on them, and the
 * server with its connection limits. Stops cleanly: the server first, then the chores and services.
 */
import type { Server } from 'node:http';
import type { Express, RequestHandler } from 'express';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Catalogue } from '../model/catalogue.ts';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { poolBreakerName } from '../model/names.ts';
import { checkDurability } from '../redis/durability.ts';
import { VERSION } from '../version.ts';
import { buildApiServices, connectApi, startApiChores } from '../wiring/api-services.ts';
import { createApp } from './app.ts';
import { rawProblem } from './problem.ts';
import { limitedServer } from './connections.ts';
import { assertLoopbackListen } from './host-check.ts';
import { KeyRing } from './key-ring.ts';

export interface ApiServer {
  url: string;
  port: number;
  /** The Express app, for tests that walk its routes. */
  app: Express;
  /** Reads the API keys again (what SIGHUP does); throws CONFIG_INVALID, keeping the keys in use, when they are bad. Returns how many there are. */
  reloadKeys(): number;
  close(): Promise<void>;
}

/** On shutdown, requests still running after this long are cut off. */
const CLOSE_DEADLINE_MS = 10_000;

/**
 * A request Node refuses before Express sees it (malformed HTTP, headers over 16 KiB) still gets
 * problem+json, as every other error does; a connection already gone is just closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, detail, type] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request headers (URL included) are larger than the server accepts', 'bad-request']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request did not arrive in time (SWITCHYARD_HEADERS_TIMEOUT_MS for its head, SWITCHYARD_REQUEST_TIMEOUT_MS for all of it)', 'request-timeout']
        : [400, 'the request is not valid HTTP', 'bad-request'];
  socket.end(rawProblem(status, type, detail));
}

export interface StartApiOptions {
  config: Config;
  catalogue: Catalogue;
  redisUrl: string;
  log: Logger;
  /** The /dashboard page to mount (cli/modules.ts loadDashboard); without it, no dashboard. */
  dashboard?: RequestHandler;
}

/** SIGHUP reloads the API keys (rotation without a restart); a bad file is logged and changes nothing. */
function reloadOnHangUp(keys: KeyRing, log: Logger): { reload(): number; stop(): void } {
  const reload = () => {
    const n = keys.reload();
    log.info({ keys: n }, 'API keys reloaded');
    return n;
  };
  const onHangUp = () => {
    try {
      reload();
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'API keys not reloaded: the keys in use are kept');
    }
  };
  process.on('SIGHUP', onHangUp);
  return { reload, stop: () => void process.off('SIGHUP', onHangUp) };
}

export async function startApi(opts: StartApiOptions): Promise<ApiServer> {
  const { config, catalogue, log } = opts;
  const keys = new KeyRing(config);
  if (!keys.keyed) await assertLoopbackListen(config.host);
  const services = await buildApiServices(connectApi(opts.redisUrl, log), config, catalogue, log);
  const { redis, breakers } = services;
  const app = createApp({
    ...services,
    config,
    keys,
    boardQueues: [services.engine.runQueue, services.callbacks.queue],
    breakerState: (ref) => breakers.state(poolBreakerName(ref)),
    log,
    version: VERSION,
    ...(opts.dashboard ? { dashboard: opts.dashboard } : {}),
  });
  const chores = startApiChores(services, config, log);

  const server: Server = limitedServer(app, config.connections);
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!keys.keyed) log.warn('no SWITCHYARD_API_KEYS or SWITCHYARD_API_KEYS_FILE set: serving loopback clients only, without a key');
  const rotation = reloadOnHangUp(keys, log);
  void checkDurability(redis).then(
    ({ problems }) => problems.forEach((p) => log.warn(p)),
    () => undefined,
  );
  log.info({ url }, 'api listening');

  return {
    url,
    port,
    app,
    reloadKeys: rotation.reload,
    async close() {
      rotation.stop();
      // Stop accepting first, and answer what is in flight while everything it needs still runs.
      // Keep-alive connections that finish a request later would hold close() for the whole
      // keep-alive timeout: close each one as soon as it is idle, and all of them after a deadline.
      await services.events?.stop(); // event streams end now: they would hold their connections open
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const deadline = setTimeout(() => server.closeAllConnections(), CLOSE_DEADLINE_MS);
        server.once('close', () => {
          clearInterval(idle);
          clearTimeout(deadline);
        });
      });
      await chores.stop();
    },
  };
}
