/**
 * The worker protocol over HTTP, measured: the Python worker of examples/python-worker (one process,
 * standard library only, leasing in batches) beside a Node agent (`switchyard agent echo`, one
 * process), the same no-op `echo` tasks, one run, behind a real API process. Each side gets its own
 * pool; tasks are pinned to it.
 * - End to end: `--jobs` tasks posted in batches of 1 000 while the worker runs, until every one is
 *   completed; rounds alternate the sides after a warm-up, medians.
 * - Lease to result at `--lease-rate` tasks/s offered for `--lease-seconds`: per task, from the
 *   lease (BullMQ's processedOn, set when the task went active) to its commit (finishedOn), both on
 *   Redis's side; and from enqueue to commit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { createRedis, deleteKeysUnder, freePort, queueName } from '../src/index.ts';
import { apiReady, printed, startAgent, startApiProcess, stop } from './processes.ts';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

const WORKER = fileURLToPath(new URL('../examples/python-worker/worker.py', import.meta.url));
const SIDES = ['node', 'py'] as const;
type Side = (typeof SIDES)[number];
const LABEL: Record<Side, string> = { node: 'Node agent (switchyard agent)', py: 'Python worker over HTTP' };

export interface HttpWorkerBenchOptions {
  leaseRate: number;
  leaseSeconds: number;
}

function python(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function startPython(bin: string, url: string, concurrency: number): Promise<ChildProcess> {
  const child = spawn(bin, [WORKER, '--type', 'echo', '--pool', 'py', '--concurrency', String(concurrency), '--batch', '200'], {
    env: { ...process.env, SWITCHYARD_URL: url, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await printed(child, 'registered ', 'the python worker');
  return child;
}

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 202) throw new Error(`enqueue answered ${res.status}: ${await res.text()}`);
};

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

export async function httpWorkerScenario(opts: BenchOptions & HttpWorkerBenchOptions, progress: Progress): Promise<Report> {
  const bin = python();
  const command = `npm run bench -- http-worker --jobs ${opts.jobs} --concurrency ${opts.concurrency} --rounds ${opts.rounds} --lease-rate ${opts.leaseRate} --lease-seconds ${opts.leaseSeconds}`;
  if (!bin) {
    progress('http-worker: skipped, no python3 (the Python worker needs it)');
    return { title: 'Workers over HTTP (Python) beside a Node agent', command, text: 'Not measured: no python3 on this machine.', summary: [], data: {} };
  }
  const prefix = `bench-httpw-${process.pid}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const api = startApiProcess(opts.redis, port, { SWITCHYARD_PREFIX: prefix });
  const redis = createRedis(opts.redis, 'blocking');
  const queues = Object.fromEntries(SIDES.map((pool) => [pool, new Queue(queueName({ type: 'echo', pool }), { connection: redis, prefix })])) as Record<Side, Queue>;
  const children: ChildProcess[] = [api];
  try {
    await apiReady(url);
    children.push(await startAgent({ redisUrl: opts.redis, prefix, type: 'echo', pool: 'node', concurrency: opts.concurrency }));
    children.push(await startPython(bin, url, opts.concurrency));
    for (let i = 0; ; i++) {
      const pools = (await (await fetch(`${url}/v1/pools?type=echo`)).json()) as Array<{ pool: string; eligible: boolean }>;
      if (SIDES.every((p) => pools.some((x) => x.pool === p && x.eligible))) break;
      if (i > 200) throw new Error('the pools did not become eligible');
      await sleep(50);
    }
    const completed = async (side: Side) => (await queues[side].getJobCounts('completed')).completed ?? 0;
    /** End to end: post `jobs` tasks in batches while the worker runs; tasks/s until the last is completed. */
    const endToEnd = async (side: Side, jobs: number): Promise<number> => {
      // From an empty completed set: BullMQ trims it to the kept count, which a count of all rounds would reach.
      await queues[side].clean(0, 1_000_000, 'completed');
      const before = await completed(side);
      const t = performance.now();
      for (let i = 0; i < jobs; i += 1000) {
        await post(`${url}/v1/tasks/batch`, { tasks: Array.from({ length: Math.min(1000, jobs - i) }, (_, k) => ({ type: 'echo', payload: { i: i + k }, pool: side })) });
      }
      while ((await completed(side)) - before < jobs) await sleep(5);
      return jobs / ((performance.now() - t) / 1000);
    };
    const e2e: Record<Side, number[]> = { node: [], py: [] };
    for (let r = 0; r <= opts.rounds; r++) {
      for (const side of r % 2 ? [...SIDES].reverse() : SIDES) {
        const rate = await endToEnd(side, r === 0 ? Math.min(opts.jobs, 2000) : opts.jobs);
        if (r > 0) e2e[side].push(rate);
      }
      if (r > 0) progress(`http-worker round ${r}/${opts.rounds}: end to end ${fmt(e2e.node.at(-1)!)} tasks/s Node agent, ${fmt(e2e.py.at(-1)!)} Python worker`);
    }
    /** Offered `leaseRate`/s for `leaseSeconds` (a batch every 20 ms); lease → commit and enqueue → commit of each task. */
    const latency = async (side: Side) => {
      await queues[side].clean(0, 1_000_000, 'completed');
      const perTick = Math.max(1, Math.round(opts.leaseRate / 50));
      const until = performance.now() + opts.leaseSeconds * 1000;
      let sent = 0;
      for (let tick = 0; performance.now() < until; tick++) {
        const due = performance.now() + 20;
        void post(`${url}/v1/tasks/batch`, { tasks: Array.from({ length: perTick }, (_, k) => ({ type: 'echo', payload: { i: k }, pool: side })) });
        sent += perTick;
        await sleep(Math.max(0, due - performance.now()));
      }
      while ((await completed(side)) < sent) await sleep(20);
      const jobs = await queues[side].getJobs(['completed'], 0, -1);
      const lease = jobs.map((j) => (j.finishedOn ?? 0) - (j.processedOn ?? 0));
      const total = jobs.map((j) => (j.finishedOn ?? 0) - j.timestamp);
      return { tasks: jobs.length, offeredPerSec: sent / opts.leaseSeconds, lease: [50, 95, 99].map((p) => pct(lease, p)), total: [50, 95, 99].map((p) => pct(total, p)) };
    };
    const lat = { node: await latency('node'), py: await latency('py') };
    progress(`http-worker latency at ${opts.leaseRate}/s: lease to commit p50 ${lat.node.lease[0]} ms Node, ${lat.py.lease[0]} ms Python`);
    const m = { node: median(e2e.node), py: median(e2e.py) };
    const row = (name: string, f: (s: Side) => string) => `| ${name} | ${f('node')} | ${f('py')} |`;
    const text = [
      `One API process (\`switchyard api\`), one Node agent process (\`switchyard agent echo --concurrency ${opts.concurrency}\`) and one Python worker process (\`examples/python-worker/worker.py --concurrency ${opts.concurrency} --batch 200\`: it leases up to 200 tasks per request, and reports an end at once when idle, else with the ends that finished during the previous report, in one request), each in its own pool of the no-op \`echo\` type; tasks pinned to the pool, posted over HTTP by the bench in batches of 1 000 while the worker runs.`,
      '',
      `| | ${LABEL.node} | ${LABEL.py} |`,
      '|---|---:|---:|',
      row(`end to end, ${fmt(opts.jobs)} tasks, tasks/s (median of ${opts.rounds})`, (s) => fmt(m[s])),
      row('rounds', (s) => e2e[s].map((x) => fmt(x)).join(', ')),
      row(`lease (active) → committed, p50 / p95 / p99 ms, ${opts.leaseRate} tasks/s offered for ${opts.leaseSeconds} s`, (s) => lat[s].lease.join(' / ')),
      row('enqueue → committed, p50 / p95 / p99 ms, same run', (s) => lat[s].total.join(' / ')),
      '',
      "Lease → committed is Redis's own record of each task: from the moment it went active (BullMQ's processedOn: the Node agent's fetch, or the lease desk's) to its commit (finishedOn). For the Python worker it spans the lease answer, the handler and the results request.",
    ].join('\n');
    const summary = [
      summaryRow('Python worker over HTTP (one process, batch leases), end to end, tasks/s (vs a Node agent)', fmt(m.node), fmt(m.py), (m.py / m.node).toFixed(2), '≥ 2 000/s', m.py >= 2000),
      summaryRow(`Python worker, lease → result p50 at ${opts.leaseRate} tasks/s, ms (vs a Node agent's fetch → commit)`, String(lat.node.lease[0]), String(lat.py.lease[0]), '', '≤ 5 ms', lat.py.lease[0]! <= 5),
    ];
    return { title: 'Workers over HTTP (Python) beside a Node agent', command, text, summary, data: { e2e, lat } };
  } finally {
    for (const c of children.reverse()) await stop(c);
    await Promise.all(Object.values(queues).map((q) => q.close()));
    await deleteKeysUnder(redis, prefix);
    redis.disconnect();
  }
}
