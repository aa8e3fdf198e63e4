/**
 * The embedded default of `switchyard start`: use REDIS_URL if set, else a Redis answering on
 * 127.0.0.1:6379, else spawn the local `redis-server` on a free port with AOF on and its data
 * under the data dir; stop it on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { SwitchyardError } from '../model/errors.ts';

export interface RedisEndpoint {
  url: string;
  /** Where it came from, for the start banner. */
  source: 'REDIS_URL' | 'local' | 'embedded';
  stop(): Promise<void>;
}

export const INSTALL_HINT =
  'No Redis answers on 127.0.0.1:6379 and there is no redis-server binary on PATH.\n' +
  'Install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)\n' +
  'or point Switchyard at a running Redis: REDIS_URL=redis://host:6379 npm start';

/** Sends PING over a raw socket; true when something answers +PONG (or NOAUTH: a Redis, locked). */
export function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = new Socket();
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('data', (buf) => finish(/^(\+PONG|-NOAUTH)/.test(buf.toString())));
    socket.connect(port, host, () => socket.write('PING\r\n'));
  });
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

export interface SpawnRedisOptions {
  dataDir: string;
  port?: number;
  binary?: string;
  /** Extra `--name value` arguments. */
  args?: readonly string[];
}

/** Spawns a redis-server with AOF on, resolves once it answers PING. */
/** How long stop() lets redis-server shut down cleanly before SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;

export async function spawnRedis(opts: SpawnRedisOptions): Promise<RedisEndpoint & { process: ChildProcess; port: number }> {
  const port = opts.port ?? (await freePort());
  const dir = resolve(opts.dataDir);
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    opts.binary ?? 'redis-server',
    [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', // always: no acknowledged task lost (docs/reliability.md)
      '--maxmemory-policy', 'noeviction', '--logfile', join(dir, 'redis.log'),
      ...(opts.args ?? []),
    ],
    { stdio: 'ignore' },
  );
  const spawnError = new Promise<never>((_, fail) =>
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ENOENT' ? new SwitchyardError('REDIS_NOT_FOUND', INSTALL_HINT) : err),
    ),
  );
  const exited = new Promise<never>((_, fail) =>
    child.once('exit', (code) => fail(new Error(`redis-server exited with code ${code}; see ${join(dir, 'redis.log')}`))),
  );
  const ready = (async () => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await pingRedis('127.0.0.1', port, 200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not answer on port ${port} within 10 s`);
  })();
  try {
    await Promise.race([ready, spawnError, exited]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  exited.catch(() => {}); // a later exit is expected on stop()
  return {
    url: `redis://127.0.0.1:${port}`,
    source: 'embedded',
    port,
    process: child,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        // redis-server flushes the AOF on SIGTERM, but refuses it while writing its initial AOF (a
        // replica just after its first sync) and does not try again: ask again each second, and
        // SIGKILL after STOP_TIMEOUT_MS (with appendfsync always, nothing acknowledged is in memory only).
        const again = setInterval(() => child.kill('SIGTERM'), 1000);
        const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        child.once('exit', () => {
          clearInterval(again);
          clearTimeout(kill);
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}

export async function resolveRedis(opts: { redisUrl?: string | undefined; dataDir: string }): Promise<RedisEndpoint> {
  const noop = async () => {};
  if (opts.redisUrl) return { url: opts.redisUrl, source: 'REDIS_URL', stop: noop };
  if (await pingRedis('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', source: 'local', stop: noop };
  return spawnRedis({ dataDir: join(opts.dataDir, 'redis') });
}
