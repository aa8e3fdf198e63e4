/**
 * Time and flow control (issue 20). On private redis-servers (own dir and port, AOF with fsync always;
 * the shared Redis is never touched):
 * 1. schedules' footprint: Redis bytes per schedule (used_memory growth over `--flow-schedules`
 *    schedules, with and without a recorded last fire), and the CPU of Redis and of the API process
 *    over an idle stretch with those schedules against the same stretch with none (ticks far away);
 * 2. schedules under faults: a schedule firing every minute for `--flow-minutes` with three API
 *    processes, one SIGKILLed (and replaced) every `--flow-kill-every` minutes, and Redis SIGKILLed and
 *    restarted once; every tick is reconciled from the ledger the `flaky` agent writes;
 * 3. a rate per pool: `--flow-rate` tasks/s for `--flow-rate-seconds` across three agents of one pool,
 *    with a backlog that never runs out; the rate achieved, and the busiest second;
 * 4. fairness between concurrency keys and the limit per key (bench/flow-keys.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { Agent, buildApiServices, Catalogue, connectApi, createLogger, defineAgentType, defineWorker, freePort, loadConfig, stopApiServices } from '../src/index.ts';
import demoTypes from '../queues/index.ts';
import { killLive, PrivateRedis, withServer } from './private-redis.ts';
import { apiReady as ready, startAgent, startApiProcess, stop } from './processes.ts';
import { redisCpuSeconds, usedMemory } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { fairnessRun, keyLimitRun, type FairnessRun, type KeyLimitRun } from './flow-keys.ts';

export interface FlowBenchOptions {
  flowRate: number;
  flowRateSeconds: number;
  flowSchedules: number;
  flowIdleSeconds: number;
  flowMinutes: number;
  flowKillEvery: number;
  flowFairA: number;
  flowFairB: number;
  flowLimitTasks: number;
}

export const FLOW_DEFAULTS: FlowBenchOptions = {
  flowRate: 100, flowRateSeconds: 60, flowSchedules: 10_000, flowIdleSeconds: 30, flowMinutes: 10, flowKillEvery: 2,
  flowFairA: 20_000, flowFairB: 100, flowLimitTasks: 10_000,
};

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'];
const silent = createLogger({ logLevel: 'silent', logPretty: false });

interface Footprint {
  schedules: number;
  bytesPerSchedule: number;
  bytesWithLastFire: number;
  idle: { seconds: number; redisMsPerS: { none: number; many: number }; apiMsPerS: { none: number; many: number } };
}

/** CPU of Redis and of this process (the API services run here) over `seconds` of nothing to do. */
async function idleCpu(stats: Redis, seconds: number): Promise<{ redis: number; api: number }> {
  const r0 = await redisCpuSeconds(stats);
  const c0 = process.cpuUsage();
  await sleep(seconds * 1000);
  const c = process.cpuUsage(c0);
  return { redis: ((await redisCpuSeconds(stats)) - r0) * 1000 / seconds, api: (c.user + c.system) / 1000 / seconds };
}

async function footprint(server: PrivateRedis, o: FlowBenchOptions, progress: Progress): Promise<Footprint> {
  const config = loadConfig({ SWITCHYARD_PREFIX: 'flow', LOG_LEVEL: 'silent' });
  const services = await buildApiServices(connectApi(server.url, silent), config, new Catalogue(demoTypes), silent);
  const stats = new Redis(server.url);
  try {
    await sleep(2000); // the API's first reads done
    const none = await idleCpu(stats, o.flowIdleSeconds);
    const before = await usedMemory(stats);
    for (let i = 0; i < o.flowSchedules; i++) {
      // Daily ticks at times outside the idle stretch that follows: what it measures is the cost between ticks.
      const hour = (new Date().getUTCHours() + 2 + (i % 20)) % 24;
      await services.schedules.create({ id: `s${i}`, cron: `${i % 60} ${hour} * * *`, timeZone: 'Europe/Berlin', task: { type: 'echo', payload: { message: `report ${i}` } } });
    }
    const created = await usedMemory(stats);
    progress(`flow: ${fmt(o.flowSchedules)} schedules, ${fmt((created - before) / o.flowSchedules)} bytes each`);
    const many = await idleCpu(stats, o.flowIdleSeconds);
    for (let i = 0; i < o.flowSchedules; i++) {
      await services.schedules.store.recordFire(`s${i}`, { tick: Date.now(), at: Date.now(), outcome: 'fired', id: `echo~sched_s${i}_${Date.now()}` });
    }
    const fired = await usedMemory(stats);
    return {
      schedules: o.flowSchedules,
      bytesPerSchedule: (created - before) / o.flowSchedules,
      bytesWithLastFire: (fired - before) / o.flowSchedules,
      idle: { seconds: o.flowIdleSeconds, redisMsPerS: { none: none.redis, many: many.redis }, apiMsPerS: { none: none.api, many: many.api } },
    };
  } finally {
    stats.disconnect();
    await stopApiServices(services);
  }
}

interface FaultRun {
  minutes: number;
  tickMs: number;
  expected: number;
  ran: number;
  missed: number;
  duplicates: number;
  apiKills: number;
  redisDownMs: number;
  lateMs: { median: number; max: number };
}

/** One schedule, ticking every `tickMs`, for `ticks` ticks while API processes and Redis are killed. */
async function faults(server: PrivateRedis, dir: string, o: { ticks: number; tickMs: number; killEveryTicks: number }, progress: Progress): Promise<FaultRun> {
  const ledger = join(dir, 'ledger.jsonl');
  const env = { SWITCHYARD_PREFIX: 'flowk', FLAKY_LEDGER: ledger, SWITCHYARD_HEARTBEAT_MS: '1000' };
  const agent = await startAgent({ redisUrl: server.url, prefix: 'flowk', type: 'flaky', concurrency: 10, env });
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const apis = ports.map((p) => startApiProcess(server.url, p, env));
  await Promise.all(ports.map((p) => ready(`http://127.0.0.1:${p}`)));
  const cron = o.tickMs === 60_000 ? '* * * * *' : '* * * * * *';
  const res = await fetch(`http://127.0.0.1:${ports[0]}/v1/schedules`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'flow', cron, task: { type: 'flaky', payload: { latencyMs: 5 } } }),
  });
  if (res.status !== 201) throw new Error(`could not create the schedule: ${res.status} ${await res.text()}`);
  const first = Math.ceil(Date.now() / o.tickMs) * o.tickMs;
  const last = first + (o.ticks - 1) * o.tickMs;
  let kills = 0;
  let redisDownMs = 0;
  for (let t = 1; Date.now() < last + o.tickMs / 2; t++) {
    await sleep(Math.max(0, first + t * o.tickMs - o.tickMs / 2 - Date.now())); // between ticks
    if (t % o.killEveryTicks === 0) {
      const victim = kills++ % apis.length;
      apis[victim]!.kill('SIGKILL');
      apis[victim] = startApiProcess(server.url, ports[victim]!, env);
      progress(`flow: tick ${t}: API process ${victim} SIGKILLed and started again`);
    }
    if (t === Math.floor(o.ticks / 2)) {
      const down = Date.now();
      await server.kill();
      await server.restart();
      redisDownMs = Date.now() - down;
      progress(`flow: tick ${t}: Redis SIGKILLed and restarted (${redisDownMs} ms)`);
    }
  }
  await fetch(`http://127.0.0.1:${ports[2]}/v1/schedules/flow`, { method: 'DELETE' }).catch(() => undefined);
  await sleep(2000);
  await Promise.all([...apis.map((a) => stop(a)), stop(agent)]);
  return reconcile(ledger, { first, last, tickMs: o.tickMs, ticks: o.ticks, kills, redisDownMs });
}

function reconcile(ledger: string, r: { first: number; last: number; tickMs: number; ticks: number; kills: number; redisDownMs: number }): FaultRun {
  const lines = readLedger(ledger).filter((l) => l.ev === 'start' && /~sched_flow_\d+$/.test(l.id));
  const byTick = new Map<number, number[]>();
  for (const l of lines) {
    const tick = Number(/_(\d+)$/.exec(l.id)![1]);
    if (tick >= r.first && tick <= r.last) byTick.set(tick, [...(byTick.get(tick) ?? []), l.t]);
  }
  const late = [...byTick].map(([tick, ts]) => Math.min(...ts) - tick).sort((a, b) => a - b);
  return {
    minutes: (r.ticks * r.tickMs) / 60_000,
    tickMs: r.tickMs,
    expected: r.ticks,
    ran: byTick.size,
    missed: r.ticks - byTick.size,
    duplicates: [...byTick.values()].filter((ts) => ts.length > 1).length,
    apiKills: r.kills,
    redisDownMs: r.redisDownMs,
    lateMs: { median: late[Math.floor(late.length / 2)] ?? 0, max: late.at(-1) ?? 0 },
  };
}

function readLedger(file: string): Array<{ id: string; ev: string; t: number }> {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { id: string; ev: string; t: number }];
      } catch {
        return []; // a line cut short by a kill
      }
    });
}

interface RateRun {
  rate: number;
  seconds: number;
  agents: number;
  achieved: number;
  busiestSecond: number;
  quietestSecond: number;
}

/** Three agents of one pool of a type limited to `rate` per second, with more work than that: what they start, second by second. */
async function rateRun(server: PrivateRedis, rate: number, seconds: number, progress: Progress): Promise<RateRun> {
  const metered = defineAgentType({ name: 'metered', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({}), limits: { ratePerPool: { max: rate, perMs: 1000 } } });
  const starts: number[] = [];
  const worker = defineWorker(metered, () => {
    starts.push(Date.now());
    return {};
  });
  const config = loadConfig({ SWITCHYARD_PREFIX: 'flowr', LOG_LEVEL: 'silent' });
  const services = await buildApiServices(connectApi(server.url, silent), config, new Catalogue([metered]), silent);
  const agents: Agent[] = [];
  try {
    for (let i = 0; i < 3; i++) agents.push(await Agent.start({ definition: worker, redisUrl: server.url, config, log: silent, concurrency: 20 }));
    // Routed once the API's fleet snapshot has the pool's agents (before, a task would be parked).
    for (let i = 0; i < 100 && services.router.route({ type: 'metered' }).pool !== 'default'; i++) await sleep(100);
    const total = Math.ceil(rate * (seconds + 10));
    for (let i = 0; i < total; i += 1000) await services.producer.enqueueBatch(Array.from({ length: Math.min(1000, total - i) }, (_, j) => ({ type: 'metered', payload: { i: i + j } })));
    progress(`flow: ${fmt(total)} tasks of a type limited to ${rate}/s per pool, three agents, ${seconds + 5} s`);
    await sleep((seconds + 5) * 1000);
  } finally {
    await Promise.all(agents.map((a) => a.close(0)));
    await stopApiServices(services);
  }
  progress(`flow: ${fmt(starts.length)} tasks started, over ${fmt(((starts.at(-1) ?? 0) - (starts[0] ?? 0)) / 1000, 1)} s`);
  // Whole seconds from the first start, after a 5 s warm-up (agents starting one after another).
  const from = starts[0]! + 5000;
  const counts = Array.from({ length: seconds }, (_, s) => starts.filter((t) => t >= from + s * 1000 && t < from + (s + 1) * 1000).length);
  return { rate, seconds, agents: 3, achieved: counts.reduce((a, b) => a + b, 0) / seconds, busiestSecond: Math.max(...counts), quietestSecond: Math.min(...counts) };
}

export async function flowScenario(opts: BenchOptions & FlowBenchOptions, progress: Progress): Promise<Report> {
  const o = { ...FLOW_DEFAULTS, ...opts };
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-flow-'));
  try {
    const fp = await withServer(AOF, join(dir, 'footprint'), (s) => footprint(s, o, progress));
    // Smoke: ticks every second; the real run: every minute (kills every --flow-kill-every minutes).
    const run = opts.smoke ? { ticks: 12, tickMs: 1000, killEveryTicks: 3 } : { ticks: o.flowMinutes, tickMs: 60_000, killEveryTicks: o.flowKillEvery };
    const fr = await withServer(AOF, join(dir, 'faults'), (s) => faults(s, dir, run, progress));
    const rr = await withServer(AOF, join(dir, 'rate'), (s) => rateRun(s, o.flowRate, o.flowRateSeconds, progress));
    const fair = await withServer(AOF, join(dir, 'fair'), (s) => fairnessRun(s, o.flowFairA, o.flowFairB, progress));
    const limit = await withServer(AOF, join(dir, 'limit'), (s) => keyLimitRun(s, { tasks: o.flowLimitTasks, keys: 50, limit: 3, ms: 20 }, progress));
    return report({ fp, fr, rr, fair, limit }, opts);
  } finally {
    killLive();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report({ fp, fr, rr, fair, limit }: { fp: Footprint; fr: FaultRun; rr: RateRun; fair: FairnessRun; limit: KeyLimitRun }, opts: BenchOptions & FlowBenchOptions): Report {
  const tick = fr.tickMs === 60_000 ? 'every minute' : `every ${fr.tickMs / 1000} s`;
  const idle = fp.idle;
  const text = [
    `Private redis-servers (AOF, appendfsync always). **Footprint:** ${fmt(fp.schedules)} schedules (daily cron ticks, a small \`echo\` task each) created through an API process's services; Redis \`used_memory\` growth per schedule, then again once each has a recorded last fire; the CPU of Redis and of the API process over ${idle.seconds} s with no tick due, before the schedules existed and after.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| Redis bytes per schedule (definition, next tick) | ${fmt(fp.bytesPerSchedule)} |`,
    `| Redis bytes per schedule with its last fire | ${fmt(fp.bytesWithLastFire)} |`,
    `| Redis CPU between ticks, ms per s: no schedules / ${fmt(fp.schedules)} | ${fmt(idle.redisMsPerS.none, 2)} / ${fmt(idle.redisMsPerS.many, 2)} |`,
    `| API process CPU between ticks, ms per s: no schedules / ${fmt(fp.schedules)} | ${fmt(idle.apiMsPerS.none, 2)} / ${fmt(idle.apiMsPerS.many, 2)} |`,
    '',
    `**Under faults:** one schedule ticking ${tick} for ${fr.expected} ticks, three \`switchyard api\` processes (each runs the timer), one of them SIGKILLed and started again ${fr.apiKills} times, Redis SIGKILLed and restarted once (down ${fmt(fr.redisDownMs)} ms); a \`flaky\` agent records each task it starts, and each tick's task is found by its id (\`flaky~sched_flow_<tick>\`).`,
    '',
    '| ticks due | ran | missed | ran twice | lateness, median / max |',
    '|---:|---:|---:|---:|---:|',
    `| ${fr.expected} | ${fr.ran} | ${fr.missed} | ${fr.duplicates} | ${fmt(fr.lateMs.median)} ms / ${fmt(fr.lateMs.max)} ms |`,
    '',
    `**Rate per pool:** a type declaring \`limits: { ratePerPool: { max: ${rr.rate}, perMs: 1000 } }\`, ${rr.agents} agents of its pool (concurrency 20 each, in the bench process) and a backlog larger than ${rr.seconds + 10} s of the rate; tasks started in each whole second of ${rr.seconds} s, after 5 s of warm-up.`,
    '',
    '| rate | achieved, tasks/s | off by | busiest second | quietest second |',
    '|---:|---:|---:|---:|---:|',
    `| ${rr.rate}/s | ${fmt(rr.achieved, 1)} | ${fmt(((rr.achieved - rr.rate) / rr.rate) * 100, 1)} % | ${rr.busiestSecond} | ${rr.quietestSecond} |`,
    '',
    `**Fairness between keys:** key \`a\` enqueues ${fmt(fair.a)} no-op tasks (batches of 1 000), then key \`b\` enqueues ${fmt(fair.b)}; ${fair.agents} agent processes (concurrency 20). Once without keys (FIFO), once with \`concurrencyKey\`; b's time to completion from its enqueue, and the throughput of all ${fmt(fair.a + fair.b)} from the first enqueue to the last completion.`,
    '',
    "| run | b's p95 to completion | tasks/s |",
    '|---|---:|---:|',
    `| without keys (FIFO) | ${fmt(fair.fifo.bP95Ms)} ms | ${fmt(fair.fifo.tasksPerS)} |`,
    `| with keys (fair) | ${fmt(fair.fair.bP95Ms)} ms | ${fmt(fair.fair.tasksPerS)} (${fmt(fair.fair.tasksPerS / fair.fifo.tasksPerS, 2)}×) |`,
    '',
    `**Limit per key:** ${fmt(limit.tasks)} tasks of ${limit.ms} ms over ${limit.keys} keys with \`concurrencyLimit: ${limit.limit}\`, ${limit.agents} agent processes at concurrency ${limit.concurrency} (SWITCHYARD_LOCK_MS 5 000); one agent SIGKILLed ${fmt(limit.killedAfterMs)} ms in. The handlers count themselves in Redis (a set per key they enter and leave; the killed agent's entries removed once it is dead).`,
    '',
    '| most of one key running at once, as the handlers saw | completed | seconds |',
    '|---:|---:|---:|',
    `| ${limit.mostSeen} | ${fmt(limit.completed)} of ${fmt(limit.tasks)} | ${fmt(limit.seconds, 1)} |`,
  ].join('\n');
  return {
    title: 'Flow: schedules, rate per pool, fairness and limits per key',
    command: `npm run bench -- flow${opts.smoke ? ' --smoke' : ''}`,
    text,
    summary: [
      summaryRow(`schedule ${tick}, ${fr.expected} ticks, ${fr.apiKills} API kills, a Redis restart`, `${fr.expected} ticks`, `${fr.ran} ran, ${fr.missed} missed, ${fr.duplicates} twice`, '', '0 missed, 0 twice', fr.missed === 0 && fr.duplicates === 0),
      summaryRow(`Redis bytes per schedule (${fmt(fp.schedules)}, with last fire)`, '', fmt(fp.bytesWithLastFire), '', '≤ 1,024', fp.bytesWithLastFire <= 1024),
      summaryRow(
        `rate per pool ${rr.rate}/s, ${rr.agents} agents, ${rr.seconds} s: achieved / busiest second`,
        `${rr.rate}/s`,
        `${fmt(rr.achieved, 1)}/s / ${rr.busiestSecond}`,
        fmt(rr.achieved / rr.rate, 3),
        '±5 %, busiest ≤ 1.1 × rate',
        Math.abs(rr.achieved - rr.rate) <= rr.rate * 0.05 && rr.busiestSecond <= rr.rate * 1.1,
      ),
      summaryRow(`fairness: b's ${fmt(fair.b)} behind a's ${fmt(fair.a)}, 4 agents: b's p95`, `${fmt(fair.fifo.bP95Ms)} ms (FIFO)`, `${fmt(fair.fair.bP95Ms)} ms`, fmt(fair.fair.tasksPerS / fair.fifo.tasksPerS, 2), "≤ 2 000 ms; throughput ≥ 0.9", fair.fair.bP95Ms <= 2000 && fair.fair.tasksPerS >= 0.9 * fair.fifo.tasksPerS),
      summaryRow(`limit ${limit.limit} per key, ${fmt(limit.tasks)} tasks over ${limit.keys} keys, an agent SIGKILLed`, '', `most seen ${limit.mostSeen}, ${fmt(limit.completed)} completed`, '', `≤ ${limit.limit}, all completed`, limit.mostSeen <= limit.limit && limit.completed === limit.tasks),
    ],
    data: { footprint: fp, faults: fr, rate: rr, fairness: fair, limit },
  };
}
