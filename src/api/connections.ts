/**
 * The HTTP server's connection limits: a total cap (net.Server maxConnections: more are closed on
 * accept), a cap per remote address (more get a 429 and are closed, so one host cannot take every
 * place), and timeouts so idle and slow sockets give their place back. Node counts a fresh
 * connection's head from the moment it opens, so one that never sends anything is closed after the
 * headers timeout too.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionLimits } from '../config/env.ts';
import { rawProblem } from './problem.ts';

/** How often Node looks for connections past their headers or request timeout: a fraction of it, at most 1 s. */
export const checkIntervalOf = (limits: ConnectionLimits) => Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));

/** An HTTP server with the limits applied; `open(address)` counts that address's connections. */
export function limitedServer(app: RequestListener, limits: ConnectionLimits): Server & { openFrom(address: string): number } {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkIntervalOf(limits),
    },
    app,
  );
  server.maxConnections = limits.max;
  const perAddress = new Map<string, number>();
  const refusal = rawProblem(
    429,
    'too-many-connections',
    `this address already holds ${limits.perAddress} open connections to the API (SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS); reuse or close some`,
  );
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const open = (perAddress.get(address) ?? 0) + 1;
    perAddress.set(address, open);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
    if (open > limits.perAddress) {
      // Answer before a request (clients that read see why), then close; a client that does not read
      // cannot hold the place: the socket is destroyed shortly after in any case.
      socket.end(refusal);
      setTimeout(() => socket.destroy(), 1000).unref();
    }
  });
  return Object.assign(server, { openFrom: (address: string) => perAddress.get(address) ?? 0 });
}
