/**
 * Durable workflow nodes (issue 21), on a private redis-server (AOF, appendfsync always), with two
 * `switchyard api` processes:
 * 1. `--durable-runs` runs asleep at once (one sleep node each, wake times spread over
 *    `--durable-spread-s` seconds after a quiet stretch): Redis bytes per sleeping run, and the CPU of
 *    Redis and of the API processes over `--durable-idle-s` seconds with every run asleep, against the
 *    same stretch with none;
 * 2. before the first wake, both API processes are SIGKILLed and Redis is SIGKILLed and restarted;
 *    two new API processes wake the runs: how late each woke (its node's finish against its wake time);
 * 3. signals: ten concurrent senders to one waiting signal node: how many got a 2xx;
 * 4. completion callbacks: `--webhook-rate` tasks/s with a callback for `--webhook-down-s` seconds while
 *    the receiver refuses connections; once it listens, how long until every callback arrived, each
 *    signature checked, none lost (and how many came twice).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { createServer } from 'node:http';
import { freePort, verifyCallback } from '../src/index.ts';
import { procCpuSeconds } from './cluster.ts';
import { killLive, withServer, type PrivateRedis } from './private-redis.ts';
import { apiReady, startAgent, startApiProcess, stop } from './processes.ts';
import { redisCpuSeconds, usedMemory } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

export interface DurableBenchOptions {
  durableRuns: number;
  durableIdleS: number;
  durableSpreadS: number;
  webhookRate: number;
  webhookDownS: number;
}

export const DURABLE_DEFAULTS: DurableBenchOptions = { durableRuns: 10_000, durableIdleS: 20, durableSpreadS: 30, webhookRate: 200, webhookDownS: 60 };

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
  /** Of which the event log's, while it keeps the runs' `running` events. */
  eventBytesPerRun: number;
  idle: { seconds: number; redisMsPerS: { none: number; asleep: number }; apiMsPerS: { none: number; asleep: number } };
  redisDownMs: number;
  lateMs: { p50: number; p99: number; max: number };
  woke: number;
  signal: { senders: number; accepted: number; conflicts: number };
}

export interface WebhookRun {
  rate: number;
  downS: number;
  tasks: number;
  delivered: number;
  badSignatures: number;
  duplicates: number;
  /** From the receiver listening to the last callback's arrival. */
  drainMs: number;
  /** Attempts the receiver answered (deliveries, and repeats). */
  received: number;
}

const SECRET = 'bench-callback-secret-0123456789';

/**
 * Tasks with a callback at `rate`/s for `downS` seconds while nothing listens at the callback's
 * address (connections refused); then the receiver listens: every callback must arrive, signed.
 */
async function webhookRun(server: PrivateRedis, o: DurableBenchOptions, progress: Progress): Promise<WebhookRun> {
  const [apiPort, hookPort] = await Promise.all([freePort(), freePort()]);
  const env = { SWITCHYARD_PREFIX: `${PREFIX}cb`, SWITCHYARD_RATE_LIMIT: '0', SWITCHYARD_CALLBACK_SECRET: SECRET, SWITCHYARD_CALLBACK_HOSTS: '127.0.0.1' };
  const api = { proc: startApiProcess(server.url, apiPort, env), url: `http://127.0.0.1:${apiPort}` };
  await apiReady(api.url);
  const agent = await startAgent({ redisUrl: server.url, prefix: env.SWITCHYARD_PREFIX, type: 'echo', concurrency: 50 });
  const seen = new Map<string, number>();
  let badSignatures = 0;
  let received = 0;
  let lastAt = 0;
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received++;
      if (!verifyCallback(SECRET, req.headers['switchyard-signature'] as string | undefined, body)) badSignatures++;
      const id = (JSON.parse(body) as { id: string }).id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      lastAt = Date.now();
      res.writeHead(204).end();
    });
  });
  const url = `http://127.0.0.1:${hookPort}/hook`;
  const ids = new Set<string>();
  try {
    const t0 = Date.now();
    const perTick = Math.max(1, Math.round(o.webhookRate / 20));
    for (let tick = 0; Date.now() - t0 < o.webhookDownS * 1000; tick++) {
      const res = await post(`${api.url}/v1/tasks/batch`, { tasks: Array.from({ length: perTick }, (_, i) => ({ type: 'echo', payload: { message: `t${tick}.${i}` }, callback: { url } })) });
      if (res.status !== 202) throw new Error(`batch refused: ${res.status} ${await res.text()}`);
      for (const t of ((await res.json()) as { tasks: Array<{ id: string }> }).tasks) ids.add(t.id);
      await sleep(Math.max(0, t0 + (tick + 1) * 50 - Date.now()));
    }
    progress(`workflow-durable: ${fmt(ids.size)} tasks with a callback in ${o.webhookDownS} s, the receiver refusing connections; now it listens`);
    await new Promise<void>((r) => receiver.listen(hookPort, '127.0.0.1', r));
    const back = Date.now();
    const deadline = back + 600_000;
    while ([...ids].some((id) => !seen.has(id)) && Date.now() < deadline) await sleep(500);
    await sleep(2000); // late repeats
    return {
      rate: o.webhookRate, downS: o.webhookDownS, tasks: ids.size, delivered: [...ids].filter((id) => seen.has(id)).length, badSignatures,
      duplicates: [...seen.values()].reduce((n, c) => n + c - 1, 0), drainMs: lastAt - back, received,
    };
  } finally {
    receiver.close();
    await Promise.all([stop(agent), stop(api.proc)]);
  }
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
    // The event log holds each run's `running` event for its retention (5 min), then drops it.
    const eventLogBytes = Number((await stats.call('MEMORY', 'USAGE', `${PREFIX}:{events}:log`, 'SAMPLES', '0')) ?? 0);
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
      eventBytesPerRun: eventLogBytes / o.durableRuns,
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
    const w = await withServer(AOF, join(dir, 'redis-cb'), (s) => webhookRun(s, o, progress));
    return report(r, w, opts);
  } finally {
    killLive();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(r: DurableRun, w: WebhookRun, opts: BenchOptions): Report {
  const text = [
    `A private redis-server (AOF, appendfsync always) and two \`switchyard api\` processes. ${fmt(r.runs)} runs of one sleep node each, started over HTTP, wake times spread over the stretch after the measurements; Redis \`used_memory\` growth per sleeping run (the run's keys, its BullMQ run job and gate, its node timer); the CPU of Redis and of the two API processes over ${r.idle.seconds} s with every run asleep against the same stretch before any run existed. Then, before the first wake, both API processes SIGKILLed and Redis SIGKILLed and restarted (down ${fmt(r.redisDownMs)} ms), two new API processes started; each run's lateness is its node's finish against its wake time.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| Redis bytes per sleeping run (of which the event log's \`running\` event, dropped after its 5 min retention) | ${fmt(r.bytesPerRun)} (${fmt(r.eventBytesPerRun)}) |`,
    `| Redis CPU, ms per s: no runs / ${fmt(r.runs)} asleep | ${fmt(r.idle.redisMsPerS.none, 2)} / ${fmt(r.idle.redisMsPerS.asleep, 2)} |`,
    `| API processes' CPU, ms per s: no runs / ${fmt(r.runs)} asleep | ${fmt(r.idle.apiMsPerS.none, 2)} / ${fmt(r.idle.apiMsPerS.asleep, 2)} |`,
    `| runs woken (completed) | ${fmt(r.woke)} of ${fmt(r.runs)} |`,
    `| wake lateness p50 / p99 / max, ms | ${fmt(r.lateMs.p50)} / ${fmt(r.lateMs.p99)} / ${fmt(r.lateMs.max)} |`,
    `| signals: ${r.signal.senders} concurrent senders to one waiting node: 2xx / 409 | ${r.signal.accepted} / ${r.signal.conflicts} |`,
    '',
    `Completion callbacks: one \`switchyard api\` process (SWITCHYARD_CALLBACK_SECRET set) and one \`switchyard agent echo\` on another private redis-server; ${fmt(w.rate)} tasks/s, each with a callback, enqueued for ${w.downS} s while nothing listens at the callback's address (every attempt: connection refused); then the receiver listens and checks each signature.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| tasks with a callback, completed while the receiver refused | ${fmt(w.tasks)} |`,
    `| callbacks delivered once it listened / lost | ${fmt(w.delivered)} / ${fmt(w.tasks - w.delivered)} |`,
    `| signatures that did not verify | ${fmt(w.badSignatures)} |`,
    `| callbacks that arrived twice (at least once delivery) | ${fmt(w.duplicates)} |`,
    `| from the receiver listening to the last callback, s | ${fmt(w.drainMs / 1000, 1)} |`,
  ].join('\n');
  return {
    title: 'Durable workflow nodes: sleeps and signals',
    command: `npm run bench -- workflow-durable${opts.smoke ? ' --smoke' : ''}`,
    text,
    summary: [
      summaryRow(`Redis bytes per sleeping run (${fmt(r.runs)} asleep)`, '', fmt(r.bytesPerRun), '', '≤ 2,048', r.bytesPerRun <= 2048),
      summaryRow('wake lateness p99 after SIGKILL of every API process and a Redis restart', '', `${fmt(r.lateMs.p99)} ms`, '', '≤ 1,000 ms, all woke', r.lateMs.p99 <= 1000 && r.woke === r.runs),
      summaryRow('signals: 10 concurrent senders to one waiting node', '', `${r.signal.accepted} 2xx, ${r.signal.conflicts} 409`, '', 'one 2xx, nine 409', r.signal.accepted === 1 && r.signal.conflicts === 9),
      summaryRow(`callbacks: receiver refusing for ${w.downS} s at ${fmt(w.rate)} completions/s`, '', `${fmt(w.delivered)} of ${fmt(w.tasks)} delivered, ${fmt(w.badSignatures)} bad signatures`, '', 'all delivered, all signatures valid', w.delivered === w.tasks && w.badSignatures === 0),
    ],
    data: { durable: r, webhooks: w },
  };
}
