/**
 * Switchyard beside its peers: bare BullMQ and Switchyard (bench/throughput.ts's sides, on Redis)
 * and two PostgreSQL job queues, graphile-worker and pg-boss, each with its documented batching,
 * on the same no-op tasks, one worker at `--concurrency`, in this one process, in one run.
 * Two shapes per side, as bench/throughput.ts measures them: a ready backlog of `--jobs` added
 * first and then drained, and end to end (`--jobs` added in batches of 1 000 while the worker runs,
 * until the last one is done). Sides alternate their order from round to round; medians of
 * `--rounds` rounds after a warm-up. PostgreSQL is `--peers-database-url` (PEERS_DATABASE_URL); with
 * none answering there the scenario is skipped, not failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { Redis } from 'ioredis';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { bareBullmq, switchyard, type ThroughputOptions } from './throughput.ts';
import { createRedis, deleteKeysUnder, freePort, queueName } from '../src/index.ts';
import { apiReady, printed, startAgent, startApiProcess, stop } from './processes.ts';
import { parentPid, processTreeCpuSeconds } from './cluster.ts';
import { redisCpuSeconds } from './redis-stats.ts';

const GRAPHILE_HTTP = fileURLToPath(new URL('./graphile-http.ts', import.meta.url));

export const PEERS_DEFAULTS = {
  peersDatabaseUrl: process.env.PEERS_DATABASE_URL ?? 'postgres://switchyard:switchyard@127.0.0.1:5432/switchyard_bench',
};
export type PeersBenchOptions = typeof PEERS_DEFAULTS;

/** graphile-worker's batching, as its performance page sets it: a local queue of 500 and batched completions. */
const GRAPHILE_PRESET = { localQueue: { size: 500, refetchDelay: { durationMs: 10 } }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };
/** pg-boss fetches (and completes) up to this many jobs per query; the handler runs them `concurrency` at a time. */
const PGBOSS_BATCH = 500;

const SIDES = ['bare', 'sy', 'gw', 'boss'] as const;
type Side = (typeof SIDES)[number];
/** The sides measured behind HTTP too. */
const HTTP_SIDES = ['sy', 'gw'] as const;
type HttpSide = (typeof HTTP_SIDES)[number];
const LABEL: Record<Side, string> = { bare: 'bare BullMQ', sy: 'Switchyard', gw: 'graphile-worker', boss: 'pg-boss' };

interface Rates {
  /** CPU per task over the side's whole run (enqueue, drain, end to end: 2 × jobs tasks), µs: this process's, and the server's. */
  cpu?: { nodeUs: number; serverUs: number };
  enqueuePerSec: number;
  processPerSec: number;
  endToEndPerSec: number;
  /** graphile-worker: refetch delays that ran out (new-job notifications met during one wait for the next poll). */
  refetchDelaysExpired?: number;
}

const silentGraphile = new Logger(() => () => undefined);

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 600_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`peers: timed out waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * The same three phases as bench/throughput.ts: add the backlog (enqueue alone), start the worker
 * and time its drain, then add again with the worker running (end to end). `settled(n)` tells that
 * the database has committed n completions (both peers batch them after the handler returns).
 */
async function phases(
  o: ThroughputOptions,
  add: (from: number, n: number) => Promise<unknown>,
  startWorker: (onDone: (n: number) => void) => Promise<() => Promise<void>>,
  settled: (n: number) => Promise<boolean>,
): Promise<Rates> {
  const feed = async () => {
    const t = performance.now();
    for (let i = 0; i < o.jobs; i += o.chunk) await add(i, Math.min(o.chunk, o.jobs - i));
    return performance.now() - t;
  };
  const enqueueMs = await feed();
  let done = 0;
  let t = performance.now();
  const stop = await startWorker((n) => (done += n));
  await until(() => done >= o.jobs, 'the backlog');
  await until(() => settled(o.jobs), 'the backlog\'s completions');
  const processMs = performance.now() - t;
  t = performance.now();
  await feed();
  await until(() => done >= 2 * o.jobs, 'the end-to-end run');
  await until(() => settled(2 * o.jobs), 'the end-to-end run\'s completions');
  const endToEndMs = performance.now() - t;
  await stop();
  return { enqueuePerSec: (o.jobs / enqueueMs) * 1000, processPerSec: (o.jobs / processMs) * 1000, endToEndPerSec: (o.jobs / endToEndMs) * 1000 };
}

/** graphile-worker in `schema` (created by its migrations, dropped by the caller): addJobs in batches, run() with one no-op task. */
async function graphile(o: ThroughputOptions, url: string, schema: string, admin: pg.Pool): Promise<Rates> {
  const utils = await makeWorkerUtils({ connectionString: url, schema, logger: silentGraphile });
  try {
    await utils.migrate();
    const add = (from: number, n: number) => utils.addJobs(Array.from({ length: n }, (_, k) => ({ identifier: 'noop', payload: { i: from + k } })));
    // Completed jobs are deleted: the table holds only what is not done yet.
    const errors: unknown[] = [];
    const settled = async () => {
      if (errors.length) throw errors[0];
      return (await admin.query(`select count(*)::int as n from "${schema}"._private_jobs`)).rows[0].n === 0;
    };
    let expired = 0;
    const rates = await phases(o, add, async (onDone) => {
      const runner = await run({
        connectionString: url, schema, concurrency: o.concurrency, noHandleSignals: true, logger: silentGraphile,
        // graphile-worker keeps no result (a task returns nothing): read the payload and return.
        taskList: { noop: async (payload) => void (payload as { i: number }).i },
        preset: { worker: GRAPHILE_PRESET },
      });
      runner.events.on('job:success', () => onDone(1));
      runner.events.on('job:error', ({ error }) => void errors.push(error));
      runner.events.on('localQueue:refetchDelay:expired', () => void expired++);
      return () => runner.stop();
    }, settled);
    return { ...rates, refetchDelaysExpired: expired };
  } finally {
    await utils.release();
  }
}

/** pg-boss in `schema`: insert() in batches, one work() fetching PGBOSS_BATCH at a time and asking for the next batch at once when one came full. */
async function pgBoss(o: ThroughputOptions, url: string, schema: string, admin: pg.Pool): Promise<Rates> {
  const boss = new PgBoss({ connectionString: url, schema });
  const errors: Error[] = [];
  boss.on('error', (e) => errors.push(e));
  await boss.start();
  const queue = 'noop';
  await boss.createQueue(queue);
  let workerId: string | undefined;
  const add = async (from: number, n: number) => {
    await boss.insert(Array.from({ length: n }, (_, k) => ({ name: queue, data: { i: from + k } })));
    // pg-boss polls (every 0.5 s at the least); its documented way to skip the wait for new work.
    if (workerId) boss.notifyWorker(workerId);
  };
  // complete() runs after the handler returns, unawaited: count what the table has committed.
  const settled = async (n: number) => (await admin.query(`select count(*)::int as n from "${schema}".job where name = $1 and state = 'completed'`, [queue])).rows[0].n >= n;
  try {
    return await phases(o, add, async (onDone) => {
      workerId = await boss.work<{ i: number }>(queue, { batchSize: PGBOSS_BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        if (jobs.length === PGBOSS_BATCH) boss.notifyWorker(workerId!); // more are likely waiting: no polling pause
        const results: Array<{ i: number }> = [];
        for (let k = 0; k < jobs.length; k += o.concurrency) {
          results.push(...(await Promise.all(jobs.slice(k, k + o.concurrency).map(async (j) => ({ i: j.data.i })))));
        }
        onDone(jobs.length);
        return results;
      });
      return () => boss.offWork(queue);
    }, async (n) => {
      if (errors.length) throw errors[0]!;
      return settled(n);
    });
  } finally {
    await boss.stop({ graceful: true, wait: true, timeout: 5000 });
  }
}

/** Posts `jobs` tasks in batches of 1 000 to `url` (POST …/v1/tasks/batch), one batch at a time, then waits for `done`; tasks/s. */
async function postAll(o: ThroughputOptions, url: string, task: (i: number) => unknown, done: () => Promise<boolean>): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < o.jobs; i += o.chunk) {
    const res = await fetch(`${url}/v1/tasks/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks: Array.from({ length: Math.min(o.chunk, o.jobs - i) }, (_, k) => task(i + k)) }),
    });
    if (res.status !== 202) throw new Error(`peers: the front answered ${res.status}: ${await res.text()}`);
  }
  await until(done, 'the tasks posted over HTTP');
  return (o.jobs / (performance.now() - t)) * 1000;
}

/** Switchyard behind its API: `switchyard api` and `switchyard agent echo` processes; end to end over HTTP, tasks/s. */
async function switchyardHttp(o: ThroughputOptions, prefix: string): Promise<number> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const redis = createRedis(o.redisUrl, 'blocking');
  const queue = new Queue(queueName({ type: 'echo', pool: 'default' }), { connection: redis, prefix });
  const children: ChildProcess[] = [startApiProcess(o.redisUrl, port, { SWITCHYARD_PREFIX: prefix })];
  try {
    await apiReady(url);
    children.push(await startAgent({ redisUrl: o.redisUrl, prefix, type: 'echo', concurrency: o.concurrency }));
    await until(async () => ((await (await fetch(`${url}/v1/pools?type=echo`)).json()) as Array<{ eligible: boolean }>).some((p) => p.eligible), 'the echo pool');
    return await postAll(o, url, (i) => ({ type: 'echo', payload: { i } }), async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= o.jobs);
  } finally {
    for (const c of children.reverse()) await stop(c);
    await queue.close();
    await deleteKeysUnder(redis, prefix);
    redis.disconnect();
  }
}

/** graphile-worker behind an Express front (bench/graphile-http.ts: a front process and a worker process); end to end over HTTP, tasks/s. */
async function graphileHttp(o: ThroughputOptions, dbUrl: string, schema: string, admin: pg.Pool): Promise<number> {
  const port = await freePort();
  const env = { ...process.env, DATABASE_URL: dbUrl, GRAPHILE_SCHEMA: schema, PORT: String(port), GRAPHILE_CONCURRENCY: String(o.concurrency), GRAPHILE_PRESET: JSON.stringify(GRAPHILE_PRESET) };
  const spawnPart = (part: 'front' | 'worker') => spawn(process.execPath, ['--import', 'tsx', GRAPHILE_HTTP, part], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const children: ChildProcess[] = [];
  try {
    const front = spawnPart('front');
    children.push(front);
    await printed(front, 'ready', 'graphile-worker front');
    const worker = spawnPart('worker');
    children.push(worker);
    await printed(worker, 'ready', 'graphile-worker worker');
    return await postAll(o, `http://127.0.0.1:${port}`, (i) => ({ payload: { i } }), async () => (await admin.query(`select count(*)::int as n from "${schema}"._private_jobs`)).rows[0].n === 0);
  } finally {
    for (const c of children.reverse()) await stop(c);
  }
}

/** Whether PostgreSQL answers at `url`: undefined if it does, else why not. */
async function unreachable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

/** The `peers` scenario of `npm run bench`, measured and described. */
export async function peersScenario(opts: BenchOptions & PeersBenchOptions, progress: Progress): Promise<Report> {
  const title = 'Throughput beside PostgreSQL job queues (graphile-worker, pg-boss)';
  const command = `npm run bench -- peers --jobs ${opts.jobs} --concurrency ${opts.concurrency} --rounds ${opts.rounds}`;
  const url = opts.peersDatabaseUrl;
  const why = await unreachable(url);
  if (why) {
    const reason = `no PostgreSQL answers at ${redact(url)} (${why}); set PEERS_DATABASE_URL or --peers-database-url`;
    progress(`peers: skipped, ${reason}`);
    return { title, command, text: `Not measured: ${reason}.`, summary: [], data: { skipped: reason } };
  }
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const stats = new Redis(opts.redis);
  const setting = {
    pg: (await admin.query("select current_setting('server_version') as v, current_setting('synchronous_commit') as sc, current_setting('fsync') as f")).rows[0] as { v: string; sc: string; f: string },
    redis: { appendonly: ((await stats.config('GET', 'appendonly')) as string[])[1], save: ((await stats.config('GET', 'save')) as string[])[1] },
    redisVersion: /redis_version:(\S+)/.exec(await stats.info('server'))?.[1] ?? '?',
  };
  // The server's CPU: Redis's own count; PostgreSQL's postmaster and its backends, where /proc shows them (this host).
  const postmaster = parentPid(Number((await admin.query('select pg_backend_pid() as p')).rows[0].p));
  const serverCpu: Record<Side, () => Promise<number>> = {
    bare: () => redisCpuSeconds(stats),
    sy: () => redisCpuSeconds(stats),
    gw: async () => (postmaster === undefined ? NaN : processTreeCpuSeconds(postmaster)),
    boss: async () => (postmaster === undefined ? NaN : processTreeCpuSeconds(postmaster)),
  };
  const o: ThroughputOptions = { redisUrl: opts.redis, jobs: opts.jobs, concurrency: opts.concurrency, chunk: 1000 };
  const runs: Record<Side, Rates[]> = { bare: [], sy: [], gw: [], boss: [] };
  const httpRuns: Record<HttpSide, number[]> = { sy: [], gw: [] };
  const schemas: string[] = [];
  /** A schema name, dropped if a run before left it, and dropped again after the round. */
  const freshSchema = async (schema: string) => {
    schemas.push(schema);
    await admin.query(`drop schema if exists "${schema}" cascade`);
    return schema;
  };
  const dropSchemas = async () => {
    for (const s of schemas.splice(0)) await admin.query(`drop schema if exists "${s}" cascade`);
  };
  try {
    // Round 0 warms up the JIT, the connections and both databases and is not counted.
    for (let r = 0; r <= opts.rounds; r++) {
      const round = r === 0 ? { ...o, jobs: Math.min(o.jobs, 5000) } : o;
      const tag = `${process.pid}_${r}`;
      const measure: Record<Side, () => Promise<Rates>> = {
        bare: () => bareBullmq(round, `bench-peers-${tag}-b`),
        sy: () => switchyard(round, `bench-peers-${tag}-s`),
        gw: async () => graphile(round, url, await freshSchema(`bench_gw_${tag}`), admin),
        boss: async () => pgBoss(round, url, await freshSchema(`bench_pgboss_${tag}`), admin),
      };
      const result = {} as Record<Side, Rates>;
      for (const side of r % 2 ? [...SIDES].reverse() : SIDES) {
        const [node0, server0] = [process.cpuUsage(), await serverCpu[side]()];
        const rates = await measure[side]();
        const [node, server1] = [process.cpuUsage(node0), await serverCpu[side]()];
        const perTask = (seconds: number) => (seconds / (2 * round.jobs)) * 1e6;
        result[side] = { ...rates, cpu: { nodeUs: perTask((node.user + node.system) / 1e6), serverUs: perTask(server1 - server0) } };
        await dropSchemas();
      }
      // Behind HTTP: each side's front and worker in their own processes, the tasks posted in batches of 1 000.
      const overHttp: Record<HttpSide, () => Promise<number>> = {
        sy: () => switchyardHttp(round, `bench-peers-${tag}-h`),
        gw: async () => graphileHttp(round, url, await freshSchema(`bench_gwh_${tag}`), admin),
      };
      const http = {} as Record<HttpSide, number>;
      for (const side of r % 2 ? [...HTTP_SIDES].reverse() : HTTP_SIDES) {
        http[side] = await overHttp[side]();
        await dropSchemas();
      }
      if (r === 0) continue;
      for (const side of SIDES) runs[side].push(result[side]);
      for (const side of HTTP_SIDES) httpRuns[side].push(http[side]);
      progress(`peers round ${r}/${opts.rounds}: end to end ${SIDES.map((s) => `${LABEL[s]} ${fmt(result[s].endToEndPerSec)}`).join(', ')} tasks/s; behind HTTP ${HTTP_SIDES.map((s) => `${LABEL[s]} ${fmt(http[s])}`).join(', ')}`);
    }
  } finally {
    await dropSchemas().catch(() => undefined);
    await admin.end();
    await stats.quit();
  }
  const m = (side: Side, k: 'enqueuePerSec' | 'processPerSec' | 'endToEndPerSec') => median(runs[side].map((x) => x[k]));
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  const mh = (side: HttpSide) => median(httpRuns[side]);
  const shapes = [
    { k: 'endToEndPerSec', label: `end to end, tasks/s (${fmt(opts.jobs)} added in batches of 1 000 while the worker runs)` },
    { k: 'processPerSec', label: `drain a ready backlog of ${fmt(opts.jobs)}, tasks/s` },
    { k: 'enqueuePerSec', label: 'enqueue alone (building that backlog), tasks/s' },
  ] as const;
  const cpuUs = (side: Side, k: 'nodeUs' | 'serverUs') => {
    const v = median(runs[side].map((x) => x.cpu?.[k] ?? NaN));
    return Number.isFinite(v) ? v.toFixed(1) : 'n/a';
  };
  const spread = (side: Side) => `${fmt(Math.min(...runs[side].map((x) => x.endToEndPerSec)))}–${fmt(Math.max(...runs[side].map((x) => x.endToEndPerSec)))}`;
  const text = [
    `All four sides in this one process, one worker each at concurrency ${opts.concurrency}, the same no-op task (returns its input); ${opts.rounds} rounds after a warm-up round, the sides' order reversed every other round, medians. Each side gets a fresh Redis prefix or PostgreSQL schema per round, deleted or dropped after it.`,
    `- bare BullMQ and Switchyard: bench/throughput.ts's sides (Queue.addBulk + Worker; TaskProducer.enqueueBatch + Agent), Redis ${setting.redisVersion} (appendonly ${setting.redis.appendonly}, save "${setting.redis.save}").`,
    `- graphile-worker 0.17.3: WorkerUtils.addJobs in batches, run() with a task list of one no-op task, \`concurrency: ${opts.concurrency}\` and its documented batching, \`preset.worker\` = \`${JSON.stringify(GRAPHILE_PRESET)}\` (pool of 10 connections, the default). Done is counted when its jobs table is empty (completions are batched after the task returns).`,
    `- pg-boss 10.4.2: insert() in batches (each followed by notifyWorker), one work() with \`batchSize: ${PGBOSS_BATCH}\`, \`pollingIntervalSeconds: 0.5\` (its minimum), the handler running its batch ${opts.concurrency} at a time and calling notifyWorker on itself when the batch came full so the next fetch skips the polling pause. Done is counted when ${'`'}job${'`'} holds every task as completed (pg-boss completes a batch after the handler returns, unawaited).`,
    `- behind HTTP: Switchyard's \`switchyard api\` and \`switchyard agent echo --concurrency ${opts.concurrency}\` processes, the tasks posted to \`POST /v1/tasks/batch\`; graphile-worker behind Express with its JSON parser in one process (\`POST /v1/tasks/batch\` → addJobs) and its run() in another (bench/graphile-http.ts), the same preset. The bench posts one batch at a time and times until the last task is done.`,
    `- CPU per task: this process's (process.cpuUsage: producer, worker and the bench's own polling) and the server's (Redis: INFO cpu, used_cpu_user + used_cpu_sys; PostgreSQL: the postmaster and its backends, from /proc, where it runs on this host), over each side's whole run (enqueue, drain and end to end: ${fmt(2 * opts.jobs)} tasks), medians. Redis runs one thread; PostgreSQL's backends spread over the cores.`,
    `- PostgreSQL ${setting.pg.v} at its defaults (fsync ${setting.pg.f}, synchronous_commit ${setting.pg.sc}): the PostgreSQL peers commit durably, the Redis sides do not persist at all here; weigh the ratios with that in mind.`,
    '',
    `| shape | ${SIDES.map((s) => LABEL[s]).join(' | ')} | Switchyard / graphile-worker | Switchyard / pg-boss | bare BullMQ / graphile-worker | bare BullMQ / pg-boss | Switchyard / bare BullMQ |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...shapes.map(({ k, label }) =>
      `| ${label} | ${SIDES.map((s) => fmt(m(s, k))).join(' | ')} | ${ratio(m('sy', k), m('gw', k))} | ${ratio(m('sy', k), m('boss', k))} | ${ratio(m('bare', k), m('gw', k))} | ${ratio(m('bare', k), m('boss', k))} | ${ratio(m('sy', k), m('bare', k))} |`),
    `| CPU per task over the whole run (enqueue, drain, end to end), µs: this process (producer and worker) | ${SIDES.map((s) => cpuUs(s, 'nodeUs')).join(' | ')} | | | | | |`,
    `| CPU per task over the whole run, µs: the server (Redis; PostgreSQL's postmaster and backends) | ${SIDES.map((s) => cpuUs(s, 'serverUs')).join(' | ')} | | | | | |`,
    `| end to end behind HTTP, tasks/s (${fmt(opts.jobs)} posted in batches of 1 000 to a front process, one worker process) | | ${fmt(mh('sy'))} | ${fmt(mh('gw'))} | | ${ratio(mh('sy'), mh('gw'))} | | | | |`,
    '',
    `graphile-worker's refetch delay (${'`'}durationMs: 10${'`'}) ran out ${runs.gw.map((x) => x.refetchDelaysExpired ?? 0).join(', ')} time(s) per round: new-job notifications that arrive while a delay runs, and do not reach its random abort threshold (up to 5 × the local queue size), are not acted on when it ends; the jobs then wait for the next poll (\`pollInterval\`, 2 s by default). A run of a few hundred tasks (\`--smoke\`) can be dominated by that one wait; compare the end-to-end time with 2 s before reading its graphile-worker figure.`,
    '',
    `End-to-end rate across rounds: ${SIDES.map((s) => `${LABEL[s]} ${spread(s)}`).join(', ')} tasks/s. On a 2-core machine the database, Redis and Node share the cores; compare the ratios.`,
  ].join('\n');
  const e2e = (s: Side) => m(s, 'endToEndPerSec');
  const drain = (s: Side) => m(s, 'processPerSec');
  const summary = [
    summaryRow('Switchyard end to end vs graphile-worker, tasks/s', fmt(e2e('gw')), fmt(e2e('sy')), ratio(e2e('sy'), e2e('gw')), '≥ 1.0', e2e('sy') / e2e('gw') >= 1),
    summaryRow('Switchyard end to end behind HTTP vs graphile-worker behind Express, tasks/s', fmt(mh('gw')), fmt(mh('sy')), ratio(mh('sy'), mh('gw')), '≥ 1.0', mh('sy') / mh('gw') >= 1),
    summaryRow('Switchyard end to end vs pg-boss, tasks/s', fmt(e2e('boss')), fmt(e2e('sy')), ratio(e2e('sy'), e2e('boss')), '', undefined),
    summaryRow('Switchyard drain of a backlog vs graphile-worker, tasks/s', fmt(drain('gw')), fmt(drain('sy')), ratio(drain('sy'), drain('gw')), '', undefined),
    summaryRow('Switchyard drain of a backlog vs pg-boss, tasks/s', fmt(drain('boss')), fmt(drain('sy')), ratio(drain('sy'), drain('boss')), '', undefined),
    summaryRow('Switchyard vs bare BullMQ end to end (peers run), tasks/s', fmt(e2e('bare')), fmt(e2e('sy')), ratio(e2e('sy'), e2e('bare')), '≥ 2.3', e2e('sy') / e2e('bare') >= 2.3),
  ];
  return { title, command, text, summary, data: { ...runs, http: httpRuns, settings: setting, graphilePreset: GRAPHILE_PRESET, pgBossBatch: PGBOSS_BATCH } };
}
