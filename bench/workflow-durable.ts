/**
 * Durable workflow nodes (issue 21), on a private redis-server (AOF, appendfsync always), with two
 * `switchyard api` processes:
 * 1. `--durable-runs` runs asleep at once (one sleep node each, wake times spread over
 *    `--durable-spread-s` seconds after a quiet stretch): Redis bytes per sleeping run, and the CPU of
 *    Redis and of the API processes over `--durable-idle-s` seconds with every run asleep, against the
 *    same stretch with none;
 * 2. before the first wake, both API processes are SIGKILLed and Redis is SIGKILLed and restarted;
 *    two new API processes wake the runs: how late each woke (its node's finish against its wake time);
 * 3. signals: ten concurrent senders to one waiting signal node: how many got a 2xx.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from '../src/index.ts';
import { procCpuSeconds } from './cluster.ts';
import { killLive, withServer, type PrivateRedis } from './private-redis.ts';
import { apiReady, startApiProcess, stop } from './processes.ts';
import { redisCpuSeconds, usedMemory } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

export interface DurableBenchOptions {
  durableRuns: number;
  durableIdleS: number;
  durableSpreadS: number;
}

export const DURABLE_DEFAULTS: DurableBenchOptions = { durableRuns: 10_000, durableIdleS: 20, durableSpreadS: 30 };

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'];
const PREFIX = 'wd';

interface Api {
  proc: ChildProcess;
  url: string;
  port: number;
}

async function startApis(server: PrivateRedis, ports?: number[]): Promise<Api[]> {
  const use = ports ?? (await Promise.all([0, 1].map(() => freePort())));
  const apis = use.map((port) => ({ port, url: `http://127.0.0.1:${port}`, proc: startApiProcess(server.url, port, { SWITCHYARD_PREFIX: PREFIX, SWITCHYARD_RATE_LIMIT: '0' }) }));
  await Promise.all(apis.map((a) => apiReady(a.url)));
  return apis;
}

/** CPU of Redis and of the API processes, ms per s, over `seconds`. */
async function cpuOver(stats: Redis, apis: readonly Api[], seconds: number): Promise<{ redis: number; api: number }> {
  const r0 = await redisCpuSeconds(stats);
  const a0 = apis.reduce((s, a) => s + procCpuSeconds(a.proc.pid), 0);
  await sleep(seconds * 1000);
  const a1 = apis.reduce((s, a) => s + procCpuSeconds(a.proc.pid), 0);
  return { redis: (((await redisCpuSeconds(stats)) - r0) * 1000) / seconds, api: ((a1 - a0) * 1000) / seconds };
}

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export interface DurableRun {
  runs: number;
  bytesPerRun: number;
  idle: { seconds: number; redisMsPerS: { none: number; asleep: number }; apiMsPerS: { none: number; asleep: number } };
  redisDownMs: number;
  lateMs: { p50: number; p99: number; max: number };
  woke: number;
  signal: { senders: number; accepted: number; conflicts: number };
}

async function durableRun(server: PrivateRedis, o: DurableBenchOptions, progress: Progress): Promise<DurableRun> {
  const stats = new Redis(server.url);
  let apis = await startApis(server);
  try {
    await sleep(2000); // the APIs' first reads done
    const none = await cpuOver(stats, apis, o.durableIdleS);
    const before = await usedMemory(stats);
    // Wake times: after the creation, the idle stretch and the faults, spread over durableSpreadS.
    const firstWake = Date.now() + 30_000 + o.durableIdleS * 1000 + o.durableRuns * 2;
    const ids: string[] = [];
    for (let i = 0; i < o.durableRuns; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, o.durableRuns - i) }, (_, j) => {
          const until = new Date(firstWake + Math.floor(((i + j) * o.durableSpreadS * 1000) / o.durableRuns)).toISOString();
          return post(`${apis[(i + j) % 2]!.url}/v1/workflows`, { name: 'nap', nodes: [{ id: 'nap', kind: 'sleep', until }] }).then(async (r) => {
            if (r.status !== 202) throw new Error(`run refused: ${r.status} ${await r.text()}`);
            return ((await r.json()) as { id: string }).id;
          });
        }),
      );
      ids.push(...batch);
    }
    await sleep(6000); // every run asleep, and looked at once by the sweep
    const asleepBytes = (await usedMemory(stats)) - before;
    progress(`workflow-durable: ${fmt(o.durableRuns)} runs asleep, ${fmt(asleepBytes / o.durableRuns)} bytes each`);
    const asleep = await cpuOver(stats, apis, o.durableIdleS);
    if (Date.now() > firstWake - 5000) progress('workflow-durable: the runs were created too slowly: the faults fall after the first wake');
    // Faults during the sleep: every API process, then Redis.
    await Promise.all(apis.map((a) => stop(a.proc, 'SIGKILL')));
    const down = Date.now();
    await server.kill();
    await server.restart();
    const redisDownMs = Date.now() - down;
    apis = await startApis(server, apis.map((a) => a.port));
    progress(`workflow-durable: both API processes SIGKILLed, Redis SIGKILLed and restarted (${redisDownMs} ms); new API processes up`);
    // Wait for every wake, then read each node's wake time and finish.
    const lastWake = firstWake + o.durableSpreadS * 1000;
    await sleep(Math.max(0, lastWake - Date.now()) + 3000);
    const late: number[] = [];
    for (let i = 0; i < ids.length; i += 100) {
      const views = await Promise.all(ids.slice(i, i + 100).map((id) => fetch(`${apis[0]!.url}/v1/workflows/${id}`).then((r) => r.json() as Promise<{ state: string; nodes: Array<{ wakeAt?: string; finishedAt?: string }> }>)));
      for (const v of views) if (v.state === 'completed' && v.nodes[0]?.finishedAt && v.nodes[0].wakeAt) late.push(Date.parse(v.nodes[0].finishedAt) - Date.parse(v.nodes[0].wakeAt));
    }
    late.sort((a, b) => a - b);
    const pct = (p: number) => late[Math.min(late.length - 1, Math.ceil((p / 100) * late.length) - 1)] ?? NaN;
    const signal = await signalRun(apis[1]!.url);
    return {
      runs: o.durableRuns,
      bytesPerRun: asleepBytes / o.durableRuns,
      idle: { seconds: o.durableIdleS, redisMsPerS: { none: none.redis, asleep: asleep.redis }, apiMsPerS: { none: none.api, asleep: asleep.api } },
      redisDownMs,
      lateMs: { p50: pct(50), p99: pct(99), max: late.at(-1) ?? NaN },
      woke: late.length,
      signal,
    };
  } finally {
    stats.disconnect();
    await Promise.all(apis.map((a) => stop(a.proc)));
  }
}

/** Ten concurrent senders to one waiting signal node. */
async function signalRun(url: string): Promise<DurableRun['signal']> {
  const res = await post(`${url}/v1/workflows`, { nodes: [{ id: 'gate', kind: 'signal', name: 'go' }] });
  const { id } = (await res.json()) as { id: string };
  for (let i = 0; i < 100; i++) {
    const v = (await (await fetch(`${url}/v1/workflows/${id}`)).json()) as { nodes: Array<{ state: string }> };
    if (v.nodes[0]?.state === 'queued') break;
    await sleep(50);
  }
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => post(`${url}/v1/workflows/${id}/signals/go`, { sender: i })));
  return { senders: 10, accepted: answers.filter((a) => a.status < 300).length, conflicts: answers.filter((a) => a.status === 409).length };
}

export async function workflowDurableScenario(opts: BenchOptions & DurableBenchOptions, progress: Progress): Promise<Report> {
  const o = { ...DURABLE_DEFAULTS, ...opts };
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-durable-'));
  try {
    const r = await withServer(AOF, join(dir, 'redis'), (s) => durableRun(s, o, progress));
    return report(r, opts);
  } finally {
    killLive();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(r: DurableRun, opts: BenchOptions): Report {
  const text = [
    `A private redis-server (AOF, appendfsync always) and two \`switchyard api\` processes. ${fmt(r.runs)} runs of one sleep node each, started over HTTP, wake times spread over the stretch after the measurements; Redis \`used_memory\` growth per sleeping run (the run's keys, its BullMQ run job and gate, its node timer); the CPU of Redis and of the two API processes over ${r.idle.seconds} s with every run asleep against the same stretch before any run existed. Then, before the first wake, both API processes SIGKILLed and Redis SIGKILLed and restarted (down ${fmt(r.redisDownMs)} ms), two new API processes started; each run's lateness is its node's finish against its wake time.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| Redis bytes per sleeping run | ${fmt(r.bytesPerRun)} |`,
    `| Redis CPU, ms per s: no runs / ${fmt(r.runs)} asleep | ${fmt(r.idle.redisMsPerS.none, 2)} / ${fmt(r.idle.redisMsPerS.asleep, 2)} |`,
    `| API processes' CPU, ms per s: no runs / ${fmt(r.runs)} asleep | ${fmt(r.idle.apiMsPerS.none, 2)} / ${fmt(r.idle.apiMsPerS.asleep, 2)} |`,
    `| runs woken (completed) | ${fmt(r.woke)} of ${fmt(r.runs)} |`,
    `| wake lateness p50 / p99 / max, ms | ${fmt(r.lateMs.p50)} / ${fmt(r.lateMs.p99)} / ${fmt(r.lateMs.max)} |`,
    `| signals: ${r.signal.senders} concurrent senders to one waiting node: 2xx / 409 | ${r.signal.accepted} / ${r.signal.conflicts} |`,
  ].join('\n');
  return {
    title: 'Durable workflow nodes: sleeps and signals',
    command: `npm run bench -- workflow-durable${opts.smoke ? ' --smoke' : ''}`,
    text,
    summary: [
      summaryRow(`Redis bytes per sleeping run (${fmt(r.runs)} asleep)`, '', fmt(r.bytesPerRun), '', '≤ 2,048', r.bytesPerRun <= 2048),
      summaryRow('wake lateness p99 after SIGKILL of every API process and a Redis restart', '', `${fmt(r.lateMs.p99)} ms`, '', '≤ 1,000 ms, all woke', r.lateMs.p99 <= 1000 && r.woke === r.runs),
      summaryRow('signals: 10 concurrent senders to one waiting node', '', `${r.signal.accepted} 2xx, ${r.signal.conflicts} 409`, '', 'one 2xx, nine 409', r.signal.accepted === 1 && r.signal.conflicts === 9),
    ],
    data: { durable: r },
  };
}
