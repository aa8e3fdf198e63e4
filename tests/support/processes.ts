/**
 * Spawns real Switchyard processes (`node bin/switchyard.js ...`) for e2e tests, with their
 * output captured (printed when a test fails), and kills whatever is left after the file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { freePort } from '../../src/redis/embedded.ts';
import { anyFailed, beforeKeysDeleted, type TaskLike } from './redis.ts';
import { waitFor } from './wait.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url));

export interface Spawned {
  name: string;
  proc: ChildProcess;
  output(): string;
  /** Resolves once a line of output contains `text`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const live = new Set<Spawned>();
/** Every process spawned by this file, to show what they logged when one of its tests failed. */
const all: Spawned[] = [];
/** Process groups of everything spawned, killed whole when the file ends. */
const groups = new Set<number>();

export function spawnSwitchyard(name: string, args: string[], env: Record<string, string>): Spawned {
  return spawnProcess(name, process.execPath, [BIN, ...args], env);
}

/** Any program (a worker in another language), with the same output capture and cleanup as Switchyard's processes. */
export function spawnProcess(name: string, command: string, args: string[], env: Record<string, string>): Spawned {
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, LOG_PRETTY: 'false', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so cleanup also reaches what it started (switchyard start's children).
    detached: true,
  });
  if (proc.pid) groups.add(proc.pid);
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const spawned: Spawned = {
    name,
    proc,
    output: () => out,
    exited,
    waitForOutput: (text, timeoutMs = 30_000) =>
      waitFor(() => out.includes(text) || (proc.exitCode !== null ? Promise.reject(new Error(`${name} exited:\n${out}`)) : false), {
        timeoutMs,
        what: `${name} to print ${JSON.stringify(text)}\n--- output ---\n${out}`,
      }).then(() => undefined),
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await exited;
      live.delete(spawned);
      return code;
    },
  };
  live.add(spawned);
  all.push(spawned);
  void exited.then(() => live.delete(spawned));
  return spawned;
}

const killAll = async (): Promise<void> => {
  await Promise.all([...live].map((p) => p.kill('SIGKILL')));
  killGroups();
};
// Before the file's Redis keys go: a process still running (an agent heartbeating) would write some again.
beforeKeysDeleted(killAll);

afterAll(async ({}, suite) => {
  await killAll();
  if (!anyFailed(suite as TaskLike)) return;
  // What the processes warned about or failed with (pino levels 40+), for the failing test's report.
  for (const p of all) {
    const lines = p.output().split('\n').filter((l) => /"level":(4|5|6)0/.test(l) || (l.trim() !== '' && !l.startsWith('{')));
    if (lines.length) console.warn(`[tests] ${p.name} (pid ${p.proc.pid}) logged:\n${lines.slice(-30).join('\n')}`);
  }
});

function killGroups(): void {
  for (const pid of groups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* the group is gone */
    }
  }
}

export interface ApiProcess extends Spawned {
  url: string;
}

export async function startApiProcess(env: Record<string, string>): Promise<ApiProcess> {
  const port = await freePort();
  const api = spawnSwitchyard('api', ['api'], { PORT: String(port), HOST: '127.0.0.1', ...env });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${url}/readyz`).then((r) => r.ok), { timeoutMs: 30_000, what: `api on ${url} to be ready` }).catch((err: unknown) => {
    throw new Error(`${String(err)}\n--- api output ---\n${api.output()}`);
  });
  return Object.assign(api, { url });
}

export async function startAgentProcess(type: string, env: Record<string, string>, args: string[] = []): Promise<Spawned> {
  const agent = spawnSwitchyard(`agent ${type}`, ['agent', type, ...args], env);
  await agent.waitForOutput('"msg":"agent started"');
  return agent;
}

/** The Python worker of examples/python-worker (python: its interpreter), registered for `type` with `args`. */
export async function startPythonWorker(python: string, type: string, apiUrl: string, env: Record<string, string>, args: string[] = []): Promise<Spawned> {
  const worker = spawnProcess(`python worker ${type}`, python, ['examples/python-worker/worker.py', '--type', type, ...args], { SWITCHYARD_URL: apiUrl, PYTHONUNBUFFERED: '1', ...env });
  await worker.waitForOutput('registered ');
  return worker;
}

/** Settings for e2e fleets: fast heartbeats and health checks, so changes show in well under a second. */
export function fastFleetEnv(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    SWITCHYARD_PREFIX: prefix,
    SWITCHYARD_HEARTBEAT_MS: '200',
    SWITCHYARD_AGENT_TTL_MS: '1000',
    SWITCHYARD_HEALTH_INTERVAL_MS: '100',
    ...extra,
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `switchyard` CLI command to its end, talking to the API at `apiUrl`. */
export function runCli(args: string[], apiUrl: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env, SWITCHYARD_URL: apiUrl } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
