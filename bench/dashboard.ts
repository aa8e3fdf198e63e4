/**
 * Open dashboards against enqueue latency (issue 18, item 13): 12 workflow runs of 10 000 nodes exist
 * (no agent takes their nodes, so they stay running: the dashboards' worst case), POST /v1/tasks is
 * offered at a fixed rate by autocannon, and its latency is measured without dashboards and with 10
 * of them polling (bench/dashboard-poller.ts, a process of its own). The API is a process of its own
 * too, as in production. With `--dash-before <git ref>` the same is measured first on that commit's
 * API (exported with `git archive` into a temporary folder), polled as that commit's page polled:
 * every second, the run list only (it carried every node).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { stop } from './processes.ts';
import { deletePrefix } from './redis-stats.ts';
import { fmt, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { freePort, Registry } from '../src/index.ts';

export interface DashboardBenchOptions {
  dashboards: number;
  dashRuns: number;
  dashNodes: number;
  dashSeconds: number;
  dashRate: number;
  dashIntervalMs: number;
  dashOpen: number;
  /** A git ref whose API and polling to measure first, for comparison ('' to skip). */
  dashBefore: string;
}

export const DASHBOARD_DEFAULTS: DashboardBenchOptions = {
  dashboards: 10,
  dashRuns: 12,
  dashNodes: 10_000,
  dashSeconds: 10,
  dashRate: 200,
  dashIntervalMs: 2000,
  dashOpen: 5,
  dashBefore: '',
};

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const POLLER = fileURLToPath(new URL('./dashboard-poller.ts', import.meta.url));
/** Independent chains per run: their roots are routed and wait in the pool, every other node is pending. */
const CHAINS = 10;

interface Latency {
  requestsPerSec: number;
  errors: number;
  latencyMs: { p50: number; p99: number; max: number };
}

interface PollStats {
  polls: number;
  requests: number;
  bytes: number;
  errors: number;
  seconds: number;
  pollMs: { p50: number; p99: number; max: number };
}

interface Side {
  label: string;
  listBytes: number;
  runBytes: number;
  alone: Latency;
  withDashboards: Latency;
  polling: PollStats;
  intervalMs: number;
  open: number;
  /** The machine's 1-minute load average before this side started (other work on a shared machine shows here). */
  load: number;
}

function dashboardOptions(o: BenchOptions): DashboardBenchOptions {
  const given = o as BenchOptions & Partial<DashboardBenchOptions>;
  const d: DashboardBenchOptions = { ...DASHBOARD_DEFAULTS };
  for (const k of Object.keys(DASHBOARD_DEFAULTS) as Array<keyof DashboardBenchOptions>) if (given[k] !== undefined) Object.assign(d, { [k]: given[k] });
  return d;
}

async function startApi(root: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'api'], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', LOG_PRETTY: 'false' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return { child, url };
    if (child.exitCode !== null || i > 600) throw new Error(`the API in ${root} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function enqueue(url: string, o: DashboardBenchOptions, seconds: number): Promise<Latency> {
  const r = await autocannon({
    url: `${url}/v1/tasks`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'echo', payload: { message: 'hello' } }),
    connections: 8,
    overallRate: o.dashRate,
    duration: seconds,
  });
  return { requestsPerSec: r.requests.average, errors: r.non2xx + r.errors + r.timeouts, latencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max } };
}

async function poll(url: string, o: DashboardBenchOptions, run: string, intervalMs: number, open: number, during: () => Promise<Latency>): Promise<[Latency, PollStats]> {
  const child = spawn(process.execPath, ['--import', 'tsx', POLLER], {
    env: { ...process.env, DASH_URL: url, DASH_COUNT: String(o.dashboards), DASH_INTERVAL_MS: String(intervalMs), DASH_OPEN: String(open), DASH_RUN: run },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => setTimeout(r, intervalMs + 1000)); // every dashboard has started polling
  const latency = await during();
  await stop(child);
  return [latency, JSON.parse(out) as PollStats];
}

async function side(label: string, root: string, o: DashboardBenchOptions, redisUrl: string, prefix: string, before: boolean, progress: Progress): Promise<Side> {
  const load = loadavg()[0] ?? 0;
  const redis = new Redis(redisUrl);
  const registry = new Registry(redis, prefix);
  const timing = { heartbeatMs: 600_000, ttlMs: 1_800_000 };
  // An agent that never pulls keeps the echo pool open, so tasks and roots wait in it (as in bench/http.ts).
  await registry.register({ id: 'bench-holder', type: 'echo', version: '1.0.0', capabilities: [{ name: 'echo', version: '1.0.0' }], concurrency: 1 }, timing);
  await registry.heartbeat('bench-holder', { health: 'HEALTHY', running: 0 }, timing);
  const api = await startApi(root, { REDIS_URL: redisUrl, SWITCHYARD_PREFIX: prefix, SWITCHYARD_MAX_WORKFLOW_NODES: String(o.dashNodes), SWITCHYARD_MAX_BODY_BYTES: String(64 * 1024 * 1024) });
  try {
    const ids: string[] = [];
    for (let r = 0; r < o.dashRuns; r++) {
      const nodes = Array.from({ length: o.dashNodes }, (_, i) => ({ id: `n${i}`, type: 'echo', payload: { message: `node ${i} of run ${r}` }, ...(i >= CHAINS ? { dependsOn: [`n${i - CHAINS}`] } : {}) }));
      const res = await fetch(`${api.url}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `bench-${r}`, nodes }) });
      if (res.status !== 202) throw new Error(`POST /v1/workflows: ${res.status} ${await res.text()}`);
      ids.push(((await res.json()) as { id: string }).id);
    }
    progress(`dashboard (${label}): ${o.dashRuns} runs of ${fmt(o.dashNodes)} nodes written`);
    const listBytes = (await (await fetch(`${api.url}/v1/workflows?limit=10`)).arrayBuffer()).byteLength;
    const runBytes = (await (await fetch(`${api.url}/v1/workflows/${ids[0]}?nodeLimit=200`)).arrayBuffer()).byteLength;
    await enqueue(api.url, o, 1); // warm-up
    const alone = await enqueue(api.url, o, o.dashSeconds);
    progress(`dashboard (${label}): enqueue alone p50 ${alone.latencyMs.p50} ms, p99 ${alone.latencyMs.p99} ms`);
    // The page before polled every second and opened nothing (the list carried the nodes).
    const intervalMs = before ? 1000 : o.dashIntervalMs;
    const open = before ? 0 : o.dashOpen;
    const [withDashboards, polling] = await poll(api.url, o, ids[0]!, intervalMs, open, () => enqueue(api.url, o, o.dashSeconds));
    progress(`dashboard (${label}): with ${o.dashboards} dashboards p50 ${withDashboards.latencyMs.p50} ms, p99 ${withDashboards.latencyMs.p99} ms; they read ${fmt(polling.bytes / polling.seconds / 1e6, 1)} MB/s`);
    return { label, listBytes, runBytes, alone, withDashboards, polling, intervalMs, open, load };
  } finally {
    await stop(api.child);
    await deletePrefix(redis, prefix);
    await redis.quit();
  }
}

/** The API's sources at `ref`, in a temporary folder that uses this checkout's node_modules. */
function checkout(ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-before-'));
  const archive = execFileSync('git', ['archive', '--format=tar', ref, 'src', 'queues', 'dashboard', 'package.json', 'tsconfig.json'], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

const ms = (n: number) => fmt(n);
const kb = (n: number) => `${fmt(n / 1024, 1)} KiB`;

export async function dashboardScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const o = dashboardOptions(opts);
  const stamp = Date.now().toString(36);
  const sides: Side[] = [];
  if (o.dashBefore) {
    const dir = checkout(o.dashBefore);
    try {
      sides.push(await side(`before (${o.dashBefore})`, dir, o, opts.redis, `bench-dash-before-${stamp}`, true, progress));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const now = await side('now', ROOT, o, opts.redis, `bench-dash-${stamp}`, false, progress);
  sides.push(now);

  const row = (s: Side) =>
    `| ${s.label} | ${kb(s.listBytes)} | ${kb(s.runBytes)} | ${ms(s.alone.latencyMs.p50)} / ${ms(s.alone.latencyMs.p99)} | ${ms(s.withDashboards.latencyMs.p50)} / ${ms(s.withDashboards.latencyMs.p99)} / ${ms(s.withDashboards.latencyMs.max)} | ${fmt(s.withDashboards.requestsPerSec)} | ${s.alone.errors} / ${s.withDashboards.errors} | every ${fmt(s.intervalMs / 1000, 0)} s${s.open ? `, ${s.open} with a run open` : ''} | ${fmt(s.polling.requests / s.polling.seconds, 1)} | ${fmt(s.polling.bytes / s.polling.seconds / 1e6, 2)} MB/s | ${ms(s.polling.pollMs.p50)} / ${ms(s.polling.pollMs.p99)} |`;
  const command = `npm run bench -- dashboard --dashboards ${o.dashboards} --dash-runs ${o.dashRuns} --dash-nodes ${o.dashNodes} --dash-seconds ${o.dashSeconds} --dash-rate ${o.dashRate} --dash-interval-ms ${o.dashIntervalMs} --dash-open ${o.dashOpen}${o.dashBefore ? ` --dash-before ${o.dashBefore}` : ''}`;
  const text = [
    `${o.dashRuns} workflow runs of ${fmt(o.dashNodes)} nodes (${CHAINS} chains each; no agent takes them, so every run stays running and every dashboard keeps polling). POST /v1/tasks offered at ${o.dashRate} tasks/s (autocannon, 8 connections, ${o.dashSeconds} s, after a 1 s warm-up), first alone, then while ${o.dashboards} dashboards poll what the page polls (GET /v1/pools, /v1/agents, /v1/workflows?limit=10, and the open run's first ${200} nodes), staggered, from a process of their own. The API is a process of its own (\`switchyard api\` through tsx), on the same 2 cores as Redis, the load generator and the dashboards.`,
    '',
    '| API | GET /v1/workflows?limit=10 | GET /v1/workflows/:id?nodeLimit=200 | enqueue p50 / p99 alone, ms | enqueue p50 / p99 / max with dashboards, ms | enqueued/s with dashboards | errors alone / with | dashboards poll | their requests/s | they read | one poll p50 / p99, ms |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|',
    ...sides.map(row),
    '',
    o.dashBefore
      ? `"before" is the API and page of ${o.dashBefore}: the list carried every node of every run, and the page read it every second (the nodeLimit query did not exist; that column is the whole run).`
      : 'Add `--dash-before <git ref>` to measure a commit from before the change the same way (its page polled every second and read every node).',
    `Load average (1 min) when each side started: ${sides.map((s) => `${s.label} ${fmt(s.load, 1)}`).join(', ')} on ${cpus().length} cores; above the core count, other work shared the machine and the p99s include it.`,
  ].join('\n');
  const ratio = now.withDashboards.latencyMs.p99 / Math.max(1, now.alone.latencyMs.p99);
  const summary = [
    summaryRow(`dashboard: enqueue p99 with ${o.dashboards} dashboards open (${o.dashRuns} runs × ${fmt(o.dashNodes)} nodes), ms`, `${ms(now.alone.latencyMs.p99)} (no dashboard)`, ms(now.withDashboards.latencyMs.p99), `${fmt(ratio, 2)}`, '≤ 2', ratio <= 2),
    summaryRow(`dashboard: GET /v1/workflows?limit=10 with ${o.dashRuns} runs × ${fmt(o.dashNodes)} nodes`, sides.length > 1 ? kb(sides[0]!.listBytes) : '', kb(now.listBytes), sides.length > 1 ? `${fmt(now.listBytes / sides[0]!.listBytes, 4)}` : '', '≤ 16 KiB', now.listBytes <= 16 * 1024),
  ];
  if (sides.length > 1) {
    const b = sides[0]!;
    summary.push(summaryRow(`dashboard: enqueue p99 with ${o.dashboards} dashboards, ${b.label} → now, ms`, ms(b.withDashboards.latencyMs.p99), ms(now.withDashboards.latencyMs.p99), fmt(now.withDashboards.latencyMs.p99 / Math.max(1, b.withDashboards.latencyMs.p99), 3), '', undefined));
  }
  return { title: 'Open dashboards and enqueue latency', command, text, summary, data: { options: o, sides } };
}
