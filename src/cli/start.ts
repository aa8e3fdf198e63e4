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
import { createClient } from '../client/client.ts';
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

export async function runStart(config: Config, log: Logger): Promise<void> {
  const redis = await resolveRedis({ redisUrl: config.redisUrl, dataDir: config.dataDir });
  log.info({ url: redis.url, source: redis.source }, redis.source === 'embedded' ? 'started an embedded redis-server (AOF on)' : 'using redis');
  const workers = new Set(listWorkers(config.workersDir));

  // The resolved Redis as one URL (REDIS_CLUSTER_NODES became a redis+cluster:// one), so the children see one setting.
  const { REDIS_CLUSTER_NODES: _nodes, ...inherited } = process.env;
  const env = { ...inherited, REDIS_URL: redis.url, SWITCHYARD_SUPERVISOR_PID: String(process.pid) };
  // The children run what this process runs: the compiled CLI beside this file (no loader, no check of
  // dist/), or else the same entry with the same loader flags.
  const self = import.meta.url.endsWith('.js') ? [fileURLToPath(new URL('./main.js', import.meta.url))] : [...process.execArgv, process.argv[1]!];
  const flags = /max-semi-space-size/.test(`${process.env.NODE_OPTIONS ?? ''} ${self.join(' ')}`) ? [] : [YOUNG_GENERATION_CAP];
  let stopping = false;
  const children: Child[] = [{ name: 'api', args: ['api'] }];

  const launch = (child: Child) => {
    const proc = spawn(process.execPath, [...flags, ...self, ...child.args], { stdio: 'inherit', env });
    child.proc = proc;
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      log.error({ child: child.name, code, signal }, `${child.name} exited; restarting in ${RESTART_DELAY_MS} ms`);
      setTimeout(() => !stopping && launch(child), RESTART_DELAY_MS).unref();
    });
  };

  const stopAll = async () => {
    stopping = true;
    log.info({ graceMs: config.shutdownGraceMs }, `stopping: running tasks get ${config.shutdownGraceMs / 1000} s to finish; Ctrl-C again stops at once`);
    await Promise.all(
      children.map(async ({ proc }) => {
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), config.shutdownGraceMs + 5000);
        await exited;
        clearTimeout(killer);
      }),
    );
    await redis.stop();
  };
  // Ctrl-C again (a second request, after the first one's copies): the children exit at once too.
  const force = () => children.forEach(({ proc }) => proc && proc.exitCode === null && proc.signalCode === null && proc.kill('SIGTERM'));
  onShutdown(stopAll, log, undefined, force);
  log.info('starting the API');
  children.forEach(launch);

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      log.error('the API did not become ready within 60 s; stopping');
      await stopAll();
      process.exit(1);
    }
    await sleep(200);
  }
  // The API has loaded the catalogue: one agent per type it serves that has a worker. This process loads
  // no agent type itself (they import the whole package), which keeps the supervisor small.
  const client = createClient({ url: base, ...(config.apiKeys[0] ? { apiKey: config.apiKeys[0] } : {}) });
  const types = (await client.agentTypes()).map((t) => t.name).filter((t) => workers.has(t));
  if (stopping) return;
  const agents: Child[] = types.map((t) => ({ name: `worker ${t}`, args: ['worker', t] }));
  log.info({ agents: types }, 'starting the agents');
  children.push(...agents);
  agents.forEach(launch);

  // The banner promises working agents: wait until every type has a ready one (registered, health checked).
  const readyTypes = async () => {
    const agents = await client.agents().catch(() => []);
    return new Set(agents.filter((a) => a.health === 'HEALTHY' || a.health === 'DEGRADED').map((a) => a.type));
  };
  const until = Date.now() + AGENTS_WAIT_MS;
  let ready = await readyTypes();
  while (types.some((t) => !ready.has(t)) && Date.now() < until && !stopping) {
    await sleep(200);
    ready = await readyTypes();
  }
  if (stopping) return;
  const starting = types.filter((t) => !ready.has(t));
  const agentsLine = types.length === 0 ? '(no workers found)' : `${types.join(', ')} (pool default)${starting.length ? `; still starting: ${starting.join(', ')}` : ''}`;
  const auth = config.apiKeys.length ? ` -H 'authorization: Bearer <key>'` : '';
  process.stdout.write(
    [
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
    ].join('\n'),
  );
}
