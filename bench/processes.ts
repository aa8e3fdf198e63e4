/** Child processes for the benchmarks: Switchyard agents (`switchyard agent`) and bare BullMQ workers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis, Registry } from '../src/index.ts';

const BIN = fileURLToPath(new URL('../bin/switchyard.js', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-worker.ts', import.meta.url));

export interface AgentSpec {
  redisUrl: string;
  prefix: string;
  type: string;
  pool?: string;
  concurrency: number;
  env?: Record<string, string>;
  /** A bench agent script (run with tsx) instead of `switchyard agent <type>`; it reads BENCH_CONCURRENCY. */
  script?: string;
}

/** Starts `switchyard agent <type>` and resolves once the registry shows it HEALTHY (it pulls from then on). */
export async function startAgent(s: AgentSpec): Promise<ChildProcess> {
  const args = s.script ? ['--import', 'tsx', s.script] : [BIN, 'agent', s.type, '--concurrency', String(s.concurrency), ...(s.pool ? ['--pool', s.pool] : [])];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, REDIS_URL: s.redisUrl, SWITCHYARD_PREFIX: s.prefix, LOG_LEVEL: 'warn', LOG_PRETTY: 'false', BENCH_CONCURRENCY: String(s.concurrency), ...s.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const probe = createRedis(s.redisUrl, 'blocking');
  const registry = new Registry(probe, s.prefix);
  try {
    for (let i = 0; ; i++) {
      const me = (await registry.list({ type: s.type })).find((a) => a.pid === child.pid);
      if (me?.health === 'HEALTHY') return child;
      if (child.exitCode !== null || i > 600) throw new Error(`bench agent ${s.type} did not start`);
      await sleep(50);
    }
  } finally {
    probe.disconnect();
  }
}

/** Starts a bare BullMQ worker process on `queue` and resolves once it pulls. */
export async function startBareWorker(o: { redisUrl: string; prefix: string; queue: string; concurrency: number }): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', BARE], {
    env: { ...process.env, REDIS_URL: o.redisUrl, BENCH_PREFIX: o.prefix, BENCH_QUEUE: o.queue, BENCH_CONCURRENCY: String(o.concurrency) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await printed(child, 'ready', 'bare worker');
  return child;
}

/** Resolves once `child` (spawned with a piped stdout) has printed `text`; rejects if it exits first. */
export function printed(child: ChildProcess, text: string, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
}

/** Sends `signal` and waits for the exit; SIGKILL if the process is still there after `killAfterMs`. */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}

/** Resident memory of a process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Starts `switchyard api` on `port` (its output ignored but warnings); wait for it with apiReady. */
export function startApiProcess(redisUrl: string, port: number, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [BIN, 'api'], {
    env: { ...process.env, ...env, REDIS_URL: redisUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_PRETTY: 'false' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Resolves once the API at `url` answers /readyz. */
export async function apiReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return;
    await sleep(100);
  }
  throw new Error(`bench API at ${url} did not become ready`);
}
