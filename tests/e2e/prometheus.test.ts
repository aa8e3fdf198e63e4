/**
 * Switchyard under a real Prometheus: it scrapes a real API process (agents' counts come through Redis)
 * every second while a steady load runs, and PromQL over Switchyard's series gives the rates the load
 * had; every panel query of dashboard/grafana.json returns data; the alert rules of dashboard/alerts.yml
 * load and evaluate without errors in that Prometheus and pass their unit tests (promtool test rules).
 * Skips with the reason printed where Prometheus is not installed; CI installs it and requires it.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/redis/embedded.ts';
import { PROMETHEUS, PROMTOOL, findTool } from '../support/optional-tool.ts';
import { fastFleetEnv, ROOT, startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const prometheusPath = findTool(PROMETHEUS, 'tests/e2e/prometheus.test.ts');
const promtoolPath = findTool(PROMTOOL, 'tests/e2e/prometheus.test.ts');
const { prefix } = useRedisPrefix('e2e-prometheus');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-prometheus-'));
let api: ApiProcess;
let prometheus: ChildProcess | undefined;
let promUrl: string;
/** The steady load: RATE tasks/s of echo for SECONDS, in batches every 100 ms; when it ran (unix s). */
const RATE = 50;
const SECONDS = 20;
let loadFrom = 0;
let loadTo = 0;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
async function query(expr: string, at?: number): Promise<Sample[]> {
  const q = new URLSearchParams({ query: expr, ...(at ? { time: String(at) } : {}) });
  const res = await fetch(`${promUrl}/api/v1/query?${q}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: Sample[] } };
  if (body.status !== 'success') throw new Error(`PromQL ${expr}: ${body.error}`);
  return body.data!.result;
}
const scalar = async (expr: string, at?: number) => Number((await query(expr, at))[0]?.value[1] ?? NaN);

beforeAll(async () => {
  if (!prometheusPath || !promtoolPath) return;
  const env = fastFleetEnv(prefix);
  [api] = (await Promise.all([startApiProcess(env), startAgentProcess('echo', env, ['--concurrency', '20'])])) as [ApiProcess, ...unknown[]];
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(join(ROOT, 'dashboard/alerts.yml'))}]`,
      'scrape_configs:',
      '  - job_name: switchyard',
      `    static_configs: [{ targets: [${JSON.stringify(new URL(api.url).host)}] }]`,
    ].join('\n'),
  );
  prometheus = spawn(prometheusPath, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' });
  await waitFor(() => fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false), { what: 'Prometheus ready', timeoutMs: 30_000 });
  await waitFor(async () => (await scalar('up{job="switchyard"}')) === 1, { what: 'the first scrape', timeoutMs: 20_000 });
  // The load: RATE tasks/s, 100 ms apart, for SECONDS.
  loadFrom = Date.now() / 1000;
  const start = Date.now();
  for (let i = 0; i < SECONDS * 10; i++) {
    const tasks = Array.from({ length: RATE / 10 }, (_, j) => ({ type: 'echo', payload: { message: `m${i}-${j}` } }));
    const res = await fetch(`${api.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) });
    if (res.status !== 202) throw new Error(`batch ${i}: ${res.status} ${await res.text()}`);
    await sleep(Math.max(0, start + (i + 1) * 100 - Date.now()));
  }
  loadTo = Date.now() / 1000;
  // Every task counted as completed in Prometheus (agents publish every heartbeat, Prometheus scrapes every second).
  await waitFor(async () => (await scalar('sum(switchyard_tasks_completed_total{type="echo"})')) === RATE * SECONDS, { what: 'every completion scraped', timeoutMs: 30_000 });
}, 180_000);

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  if (prometheus && prometheus.exitCode === null) await new Promise((r) => prometheus!.once('exit', r));
});

describe.skipIf(!prometheusPath || !promtoolPath)('Switchyard scraped by Prometheus', () => {
  it('gives the rates of the load through PromQL: enqueued and completed per second, none failed or dead', async () => {
    const mid = (loadFrom + loadTo) / 2;
    // A 10 s window inside the load: the offered rate, within the jitter of batches and scrapes.
    const enqueued = await scalar('sum(rate(switchyard_tasks_enqueued_total{type="echo"}[10s]))', mid);
    const completed = await scalar('sum(rate(switchyard_tasks_completed_total{type="echo"}[10s]))', mid);
    expect(enqueued).toBeGreaterThan(RATE * 0.75);
    expect(enqueued).toBeLessThan(RATE * 1.25);
    expect(completed).toBeGreaterThan(RATE * 0.75);
    expect(completed).toBeLessThan(RATE * 1.25);
    expect(await scalar('sum(switchyard_tasks_enqueued_total{type="echo"})')).toBe(RATE * SECONDS);
    expect(await query('sum(switchyard_tasks_dead_total{type="echo"}) > 0')).toEqual([]);
    expect(await scalar('sum(rate(switchyard_http_request_duration_seconds_count{route="/v1/tasks/batch",status="202"}[10s]))', mid)).toBeGreaterThan(10 * 0.75);
    expect(await scalar('max(switchyard_agents{type="echo",health="HEALTHY"})')).toBe(1);
    expect(await scalar('min(switchyard_redis_up)')).toBe(1);
    // Waits were short: p99 under a second at this load.
    expect(await scalar('histogram_quantile(0.99, sum by (le) (rate(switchyard_task_wait_seconds_bucket[10s])))', mid)).toBeLessThan(1);
  });

  it('answers every panel query of the Grafana dashboard with data', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'dashboard/grafana.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '1m') })));
    expect(exprs.length).toBeGreaterThanOrEqual(12);
    const empty: string[] = [];
    for (const { panel, expr } of exprs) if ((await query(expr, loadTo)).length === 0) empty.push(`${panel}: ${expr}`);
    expect(empty).toEqual([]);
  });

  it('loads the alert rules, evaluates them without errors, and they pass their unit tests', async () => {
    await waitFor(async () => {
      const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastEvaluation: string }> }> } };
      const rules = body.data.groups.flatMap((g) => g.rules);
      return rules.length === 4 && rules.every((r) => r.health === 'ok' && !r.lastEvaluation.startsWith('0001'));
    }, { what: 'four alert rules evaluated, healthy', timeoutMs: 15_000 });
    // With agents serving and the breaker closed, nothing fires.
    const alerts = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: unknown[] } };
    expect(alerts.data.alerts).toEqual([]);
    const { stdout } = await promisify(execFile)(promtoolPath!, ['test', 'rules', 'alerts.test.yml'], { cwd: join(ROOT, 'dashboard') });
    expect(stdout).toMatch(/SUCCESS/);
  });
});
