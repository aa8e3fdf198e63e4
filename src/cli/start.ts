/**
 * `switchyard start`: the whole system on one machine. Redis (REDIS_URL, a local one on 6379, or
 * an embedded redis-server), the API, and one agent process per agent type that has a worker;
 * Ctrl-C stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import { createClient, type SwitchyardClient } from '../client/client.ts';
import { resolveRedis } from '../redis/embedded.ts';
import { listWorkers } from './modules.ts';
import { onShutdown } from './signals.ts';

interface Child {
  name: string;
  args: string[];
  proc?: ChildProcess;
}

const RESTART_DELAY_MS = 1000;
/**
 * A local fleet mostly idles: V8 grows each process's young generation to 2 x 16 MB while modules load
 * and keeps it; held at its initial 1 MB, the idle fleet takes ~190 MB less (README, footprint).
 * NODE_OPTIONS=--max-semi-space-size=<MB> chooses otherwise.
 */
const YOUNG_GENERATION_CAP = '--max-semi-space-size=1';
/** How long the banner waits for every agent to register before it names the ones still starting. */
const AGENTS_WAIT_MS = 60_000;

/** The child processes of `start`: launched, restarted when they die, stopped with a grace period. */
class Supervisor {
  readonly #children: Child[] = [];
  readonly #command: string[];
  stopping = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {
    // The children run what this process runs: the compiled CLI beside this file (no loader, no check of
    // dist/), or else the same entry with the same loader flags.
    const self = import.meta.url.endsWith('.js') ? [fileURLToPath(new URL('./main.js', import.meta.url))] : [...process.execArgv, process.argv[1]!];
    const flags = /max-semi-space-size/.test(`${process.env.NODE_OPTIONS ?? ''} ${self.join(' ')}`) ? [] : [YOUNG_GENERATION_CAP];
    this.#command = [...flags, ...self];
  }

  launch(child: Child): void {
    if (!this.#children.includes(child)) this.#children.push(child);
    const proc = spawn(process.execPath, [...this.#command, ...child.args], { stdio: 'inherit', env: this.env });
    child.proc = proc;
    proc.on('exit', (code, signal) => {
      if (this.stopping) return;
      this.log.error({ child: child.name, code, signal }, `${child.name} exited; restarting in ${RESTART_DELAY_MS} ms`);
      setTimeout(() => !this.stopping && this.launch(child), RESTART_DELAY_MS).unref();
    });
  }

  /** SIGTERM to each child; SIGKILL to one still running past its grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.log.info({ graceMs: this.graceMs }, `stopping: running tasks get ${this.graceMs / 1000} s to finish; Ctrl-C again stops at once`);
    await Promise.all(
      this.#children.map(async ({ proc }) => {
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), this.graceMs + 5000);
        await exited;
        clearTimeout(killer);
      }),
    );
  }

  /** Ctrl-C again (a second request, after the first one's copies): the children exit at once too. */
  force(): void {
    for (const { proc } of this.#children) if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  }
}

/** Polls the API's /readyz until it answers 200, or the deadline passes (false). */
async function apiReady(base: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fetch(`${base}/readyz`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
  return true;
}

/** The types among `types` with a HEALTHY or DEGRADED agent, once all have one or AGENTS_WAIT_MS passed. */
async function readyTypes(client: SwitchyardClient, types: readonly string[], stopping: () => boolean): Promise<Set<string>> {
  const read = async () => new Set((await client.agents().catch(() => [])).filter((a) => a.health === 'HEALTHY' || a.health === 'DEGRADED').map((a) => a.type));
  const until = Date.now() + AGENTS_WAIT_MS;
  let ready = await read();
  while (types.some((t) => !ready.has(t)) && Date.now() < until && !stopping()) {
    await sleep(200);
    ready = await read();
  }
  return ready;
}

function banner(base: string, redis: { url: string; source: string }, types: readonly string[], ready: ReadonlySet<string>, keyed: boolean): string {
  const starting = types.filter((t) => !ready.has(t));
  const agentsLine = types.length === 0 ? '(no workers found)' : `${types.join(', ')} (pool default)${starting.length ? `; still starting: ${starting.join(', ')}` : ''}`;
  const auth = keyed ? ` -H 'authorization: Bearer <key>'` : '';
  return [
    '',
    'Switchyard is running',
    `  API         ${base}`,
    `  Bull Board  ${base}/admin/queues`,
    `  Dashboard   ${base}/dashboard`,
    `  API docs    ${base}/docs`,
    `  Redis       ${redis.url} (${redis.source})`,
    `  Agents      ${agentsLine}`,
    '',
    'Try it:',
    `  npm run switchyard -- enqueue echo '{"message":"hello"}' --wait`,
    `  curl -s -X POST ${base}/v1/tasks -H 'content-type: application/json'${auth} -d '{"type":"echo","payload":{"message":"hello"}}'`,
    `  curl -s ${base}/v1/tasks/<id>${auth}`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}

export async function runStart(config: Config, log: Logger): Promise<void> {
  const redis = await resolveRedis({ redisUrl: config.redisUrl, dataDir: config.dataDir });
  log.info({ url: redis.url, source: redis.source }, redis.source === 'embedded' ? 'started an embedded redis-server (AOF on)' : 'using redis');
  const workers = new Set(listWorkers(config.workersDir));
  // The resolved Redis as one URL (REDIS_CLUSTER_NODES became a redis+cluster:// one), so the children see one setting.
  const { REDIS_CLUSTER_NODES: _nodes, ...inherited } = process.env;
  const fleet = new Supervisor({ ...inherited, REDIS_URL: redis.url, SWITCHYARD_SUPERVISOR_PID: String(process.pid) }, config.shutdownGraceMs, log);
  const stopAll = async () => {
    await fleet.stop();
    await redis.stop();
  };
  onShutdown(stopAll, log, undefined, () => fleet.force());
  log.info('starting the API');
  fleet.launch({ name: 'api', args: ['api'] });

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
  if (!(await apiReady(base, 60_000))) {
    log.error('the API did not become ready within 60 s; stopping');
    await stopAll();
    process.exit(1);
  }
  // The API has loaded the catalogue: one agent per type it serves that has a worker. This process loads
  // no agent type itself (they import the whole package), which keeps the supervisor small.
  const client = createClient({ url: base, ...(config.apiKeys[0] ? { apiKey: config.apiKeys[0] } : {}) });
  const types = (await client.agentTypes()).map((t) => t.name).filter((t) => workers.has(t));
  if (fleet.stopping) return;
  log.info({ agents: types }, 'starting the agents');
  for (const t of types) fleet.launch({ name: `agent ${t}`, args: ['agent', t] });
  // The banner promises working agents: wait until every type has a ready one (registered, health checked).
  const ready = await readyTypes(client, types, () => fleet.stopping);
  if (!fleet.stopping) process.stdout.write(banner(base, redis, types, ready, config.apiKeys.length > 0));
}
