/**
 * The registry at fleet scale: N simulated agents heartbeating every second (as real agents do,
 * through Registry.heartbeat), measured by what Redis executes (commands/s, CPU) and by the latency
 * of a filtered GET /v1/agents served by a real API while the fleet heartbeats.
 */
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { Catalogue, createLogger, loadConfig, startApi, Registry } from '../src/index.ts';
import demoTypes from '../queues/index.ts';
import { commandCalls, deletePrefix, redisCpuSeconds, totalCommands } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

export interface RegistryBenchOptions {
  redisUrl: string;
  agents: number;
  seconds: number;
  heartbeatMs: number;
}

export interface RegistryBenchResult {
  agents: number;
  seconds: number;
  heartbeatsPerSec: number;
  redisCommandsPerSec: number;
  commandsPerHeartbeat: number;
  /** The busiest commands while heartbeating, calls per second. */
  topCommands: Array<[string, number]>;
  redisCpuPercent: number;
  senderCpuPercent: number;
  idleRedisCommandsPerSec: number;
  query: string;
  queryMatches: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  requestsPerSec: number;
}

const TYPES = ['transform', 'echo', 'flaky', 'ingest', 'render'];
const POOLS = ['default', 'premium', 'batch', 'eu'];

export async function registryBench(o: RegistryBenchOptions, prefix: string): Promise<RegistryBenchResult> {
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const stats = new Redis(o.redisUrl);
  const registry = new Registry(redis, prefix);
  const timing = { heartbeatMs: o.heartbeatMs, ttlMs: 3 * o.heartbeatMs };
  const log = createLogger({ logLevel: 'silent', logPretty: false });

  // An API (with its housekeeper) on the same Redis, as in production.
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent', PORT: '0', SWITCHYARD_HEARTBEAT_MS: String(o.heartbeatMs), SWITCHYARD_AGENT_TTL_MS: String(3 * o.heartbeatMs) });
  const api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: o.redisUrl, log });

  // Baseline: what Redis does with the API alone (housekeeping, pool refresh), before any agent.
  const idle0 = await totalCommands(stats);
  await new Promise((r) => setTimeout(r, 2000));
  const idleRedisCommandsPerSec = ((await totalCommands(stats)) - idle0 - 1) / 2;

  const ids = Array.from({ length: o.agents }, (_, i) => `bench-agent-${i}`);
  await Promise.all(
    ids.map((id, i) =>
      registry.register(
        {
          id,
          type: TYPES[i % TYPES.length]!,
          pool: POOLS[Math.floor(i / TYPES.length) % POOLS.length]!,
          version: '1.0.0',
          capabilities: [{ name: TYPES[i % TYPES.length]!, version: `1.${i % 5}.0` }],
          tags: i % 3 === 0 ? ['gpu', 'eu'] : ['eu'],
          weight: 1 + (i % 10),
          concurrency: 10,
        },
        timing,
      ),
    ),
  );
  // Each simulated agent heartbeats on its own timer, spread over the interval, as a real fleet does.
  let beats = 0;
  const timers = ids.map((id, i) => {
    const health = i % 17 === 0 ? 'DEGRADED' : 'HEALTHY';
    const beat = () => void registry.heartbeat(id, { health, running: i % 10, responseTimeMs: 5 }, timing).then(() => beats++);
    return setTimeout(function tick() {
      beat();
      timers[i] = setTimeout(tick, o.heartbeatMs);
    }, Math.floor((i / ids.length) * o.heartbeatMs));
  });
  await new Promise((r) => setTimeout(r, o.heartbeatMs * 2)); // let every agent beat once

  const calls0 = await commandCalls(stats);
  const c0 = await totalCommands(stats);
  const cpu0 = await redisCpuSeconds(stats);
  const p0 = process.cpuUsage();
  const b0 = beats;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  const commands = (await totalCommands(stats)) - c0;
  const calls1 = await commandCalls(stats);
  const redisCpu = (await redisCpuSeconds(stats)) - cpu0;
  const sender = process.cpuUsage(p0);
  const heartbeats = beats - b0;

  // Latency of a filtered query while the fleet keeps heartbeating.
  const query = '/v1/agents?type=transform&tag=gpu&health=HEALTHY';
  const queryMatches = ((await (await fetch(`${api.url}${query}`)).json()) as unknown[]).length;
  const load = await autocannon({ url: `${api.url}${query}`, connections: 4, duration: Math.max(1, Math.round(o.seconds / 2)) });

  for (const t of timers) clearTimeout(t);
  await api.close();
  await deletePrefix(stats, prefix);
  await Promise.all([redis.quit(), stats.quit()]);
  return {
    agents: o.agents,
    seconds: Math.round(elapsed),
    heartbeatsPerSec: heartbeats / elapsed,
    redisCommandsPerSec: commands / elapsed,
    commandsPerHeartbeat: (commands / elapsed - idleRedisCommandsPerSec) / (heartbeats / elapsed),
    topCommands: [...calls1]
      .map(([name, n]): [string, number] => [name, (n - (calls0.get(name) ?? 0)) / elapsed])
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5),
    redisCpuPercent: (redisCpu / elapsed) * 100,
    senderCpuPercent: ((sender.user + sender.system) / 1e6 / elapsed) * 100,
    idleRedisCommandsPerSec,
    query,
    queryMatches,
    latencyMs: { p50: load.latency.p50, p90: load.latency.p90, p99: load.latency.p99, max: load.latency.max },
    requestsPerSec: load.requests.average,
  };
}

/** The `registry` scenario of `npm run bench`, measured and described. */
export async function registryScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  progress(`registry: ${opts.agents} agents heartbeating for ${opts.seconds} s, then load on GET /v1/agents`);
  const r: RegistryBenchResult = await registryBench({ redisUrl: opts.redis, agents: opts.agents, seconds: opts.seconds, heartbeatMs: 1000 }, `bench-reg-${process.pid}`);
  const text = [
    `${r.agents} simulated agents (5 types × 4 pools, tags, capabilities) each heartbeat once a second through \`Registry.heartbeat\` (one Lua call), measured over ${r.seconds} s with a real API (and its housekeeper) running. Redis figures from INFO commandstats and INFO cpu.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| heartbeats/s | ${fmt(r.heartbeatsPerSec)} |`,
    `| Redis commands/s (whole server) | ${fmt(r.redisCommandsPerSec)} |`,
    `| of which with no agent (API idle) | ${fmt(r.idleRedisCommandsPerSec)} |`,
    `| Redis commands per heartbeat | ${fmt(r.commandsPerHeartbeat, 2)} |`,
    `| Redis CPU | ${fmt(r.redisCpuPercent, 1)} % of a core |`,
    `| CPU of the process sending all ${r.agents} agents' heartbeats | ${fmt(r.senderCpuPercent, 1)} % of a core |`,
    '',
    `Redis counts the commands inside a Lua script too: a heartbeat is one EVALSHA round trip running 4 commands. The busiest commands, calls/s: ${r.topCommands.map(([c, n]) => `${c} ${fmt(n)}`).join(', ')}. Besides the heartbeats, the API's fleet snapshot rereads every agent record (one HGETALL each) once a heartbeat period and at once on a registry event (pool backlogs every 250 ms), so routing never waits on Redis.`,
    '',
    `\`GET ${r.query}\` (${r.queryMatches} matching agents) under autocannon, 4 connections, while the fleet heartbeats. autocannon, the API and the heartbeat simulator share one Node process here, so these latencies include their contention:`,
    '',
    '| p50 | p90 | p99 | max | requests/s |',
    '|---:|---:|---:|---:|---:|',
    `| ${r.latencyMs.p50} ms | ${r.latencyMs.p90} ms | ${r.latencyMs.p99} ms | ${r.latencyMs.max} ms | ${fmt(r.requestsPerSec)} |`,
  ].join('\n');
  const summary = [summaryRow(`registry: Redis CPU for ${r.agents} agents heartbeating`, '', `${fmt(r.redisCpuPercent, 1)} % of a core`, '')];
  return { summary, title: `Registry with ${r.agents} agents`, command: `npm run bench -- registry --agents ${opts.agents} --seconds ${opts.seconds}`, text, data: r };
}
