/**
 * HTTP ingestion: one API process (`switchyard api`: auth, validation, routing, idempotency
 * support, problem+json) taking POST /v1/tasks under autocannon, against the smallest Express
 * front for bare BullMQ (bench/bare-http.ts). Tasks are only accepted here, not processed: a
 * registered agent that does not pull holds the pool open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { stop } from './processes.ts';
import { deletePrefix } from './redis-stats.ts';
import { freePort, Registry } from '../src/index.ts';

export interface HttpOptions {
  redisUrl: string;
  seconds: number;
  connections: number;
}

export interface HttpSide {
  requestsPerSec: number;
  non2xx: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

const BIN = fileURLToPath(new URL('../bin/switchyard.js', import.meta.url));
const BARE = fileURLToPath(new URL('./bare-http.ts', import.meta.url));

async function serve(args: string[], env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn', LOG_PRETTY: 'false' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"echo","payload":{}}' }).then((r) => r.status < 500, () => false);
    if (up) return { child, url };
    if (child.exitCode !== null || i > 300) throw new Error(`${args.join(' ')} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function load(url: string, o: HttpOptions): Promise<HttpSide> {
  const r = await autocannon({
    url: `${url}/v1/tasks`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'echo', payload: { message: 'hello' } }),
    connections: o.connections,
    duration: o.seconds,
  });
  return { requestsPerSec: r.requests.average, non2xx: r.non2xx, latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max } };
}

export async function httpBench(o: HttpOptions, prefix: string, progress: (m: string) => void): Promise<{ bare: HttpSide; switchyard: HttpSide }> {
  const stats = new Redis(o.redisUrl);
  const bare = await serve(['--import', 'tsx', BARE], { REDIS_URL: o.redisUrl, BENCH_PREFIX: `${prefix}-b` });
  await load(bare.url, { ...o, seconds: 1 }); // warm-up
  const bareResult = await load(bare.url, o);
  await stop(bare.child);
  progress(`http: bare Express + BullMQ ${Math.round(bareResult.requestsPerSec)} req/s, p99 ${bareResult.latencyMs.p99} ms`);

  const sp = `${prefix}-s`;
  const registry = new Registry(stats, sp);
  const timing = { heartbeatMs: 600_000, ttlMs: 1_800_000 };
  await registry.register({ id: 'bench-holder', type: 'echo', version: '1.0.0', capabilities: [{ name: 'echo', version: '1.0.0' }], concurrency: 1 }, timing);
  await registry.heartbeat('bench-holder', { health: 'HEALTHY', running: 0 }, timing);
  const sy = await serve([BIN, 'api'], { REDIS_URL: o.redisUrl, SWITCHYARD_PREFIX: sp, HOST: '127.0.0.1' });
  await load(sy.url, { ...o, seconds: 1 });
  const syResult = await load(sy.url, o);
  await stop(sy.child);
  progress(`http: Switchyard API ${Math.round(syResult.requestsPerSec)} req/s, p99 ${syResult.latencyMs.p99} ms`);
  await deletePrefix(stats, `${prefix}-b`);
  await deletePrefix(stats, sp);
  await stats.quit();
  return { bare: bareResult, switchyard: syResult };
}
