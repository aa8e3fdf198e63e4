/**
 * Private redis-servers for benchmarks that must not touch the shared Redis: each in its own
 * directory and port, which can be SIGKILLed and started again on the same data. Every server still
 * running is killed when the process exits (`killLive`), whatever happened.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, spawnRedis } from '../src/index.ts';

/** Every redis-server this scenario started that has not exited: killed on the way out, whatever happened. */
const live = new Set<ChildProcess>();
export const killLive = () => {
  for (const child of live) child.kill('SIGKILL');
};

/** A private redis-server in its own directory, which can be SIGKILLed and started again on the same dir and port. */
export class PrivateRedis {
  #server: Awaited<ReturnType<typeof spawnRedis>> | undefined;

  private constructor(readonly args: readonly string[], readonly dir: string, readonly port: number) {}

  static async start(args: readonly string[], dir: string): Promise<PrivateRedis> {
    const r = new PrivateRedis(args, dir, await freePort());
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Its log so far (one file across restarts). */
  log(): string {
    return readFileSync(join(this.dir, 'redis.log'), 'utf8');
  }

  async restart(): Promise<void> {
    this.#server = await spawnRedis({ dataDir: this.dir, port: this.port, args: [...this.args] });
    const child = this.#server.process;
    live.add(child);
    child.once('exit', () => live.delete(child));
  }

  async kill(): Promise<void> {
    const child = this.#server?.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.#server?.stop();
  }
}

/** Runs `fn` on a fresh private redis-server and stops it afterwards, whatever happened. */
export async function withServer<T>(args: readonly string[], dir: string, fn: (server: PrivateRedis) => Promise<T>): Promise<T> {
  const server = await PrivateRedis.start(args, dir);
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}
