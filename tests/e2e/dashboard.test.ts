/**
 * The /dashboard page in a real browser (Debian's headless Chromium, driven by playwright-core)
 * against an API and agent processes: it renders the fleet and the schedules, updates when an agent's
 * health changes through its real health-check input, and shows a schedule's last fire and the run it
 * started. Saves test-output/dashboard.png.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json } from '../support/http.ts';
import { CHROMIUM, findTool } from '../support/optional-tool.ts';
import { fastFleetEnv, ROOT, startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

// Without a browser the file skips with the reason printed (a fresh machine has only Node and Redis).
const chromiumPath = findTool(CHROMIUM, 'tests/e2e/dashboard.test.ts');
const { prefix } = useRedisPrefix('e2e-dashboard');
const env = fastFleetEnv(prefix);
const down = new Set<string>();
let downstream: Server;
let api: ApiProcess;
let browser: Browser;
let page: Page;

const post = (path: string, body: unknown) =>
  fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  if (!chromiumPath) return;
  downstream = createServer((req, res) => {
    res.statusCode = down.has(req.url!.slice(1)) ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => downstream.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(downstream.address() as AddressInfo).port}`;
  [api] = (await Promise.all([
    startApiProcess(env),
    startAgentProcess('flaky', { ...env, FLAKY_HEALTH_URL: `${base}/blue` }, ['--pool', 'blue', '--weight', '3']),
    startAgentProcess('flaky', { ...env, FLAKY_HEALTH_URL: `${base}/green` }, ['--pool', 'green']),
  ])) as [ApiProcess, ...unknown[]];
  await waitFor(async () => ((await json(fetch(`${api.url}/v1/agents?health=HEALTHY`))) as unknown[]).length === 2, { what: 'both agents HEALTHY', timeoutMs: 30_000 });
  // Two schedules the page finds at its first read: an active interval and a paused cron.
  for (const body of [
    { id: 'dash-every-hour', name: 'hourly probe', everyMs: 3_600_000, task: { type: 'flaky', payload: {} } },
    { id: 'dash-nightly', cron: '30 2 * * *', timeZone: 'Europe/Berlin', paused: true, task: { type: 'flaky', payload: {} } },
  ]) {
    const res = await post('/v1/schedules', body);
    if (res.status !== 201) throw new Error(`POST /v1/schedules ${body.id}: ${res.status} ${await res.text()}`);
  }
  // Chromium without its background services: this machine's network is closed to everything but localhost.
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 90_000);
afterAll(async () => {
  await browser?.close();
  if (downstream) await new Promise<void>((r) => downstream.close(() => r()));
});

const rowOf = (pool: string) => page.locator('#agents tbody tr', { hasText: pool });
const scheduleRow = (id: string) => page.locator('#schedules tbody tr', { has: page.locator(`td[data-schedule="${id}"]`) });

describe.skipIf(!chromiumPath)('the dashboard in a browser', () => {
  it('renders pools, agents and workflow runs of the running system', async () => {
    const res = await fetch(`${api.url}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'dashboard-demo', nodes: [{ id: 'a', type: 'flaky', payload: {} }, { id: 'b', type: 'flaky', payload: {}, dependsOn: ['a'] }] }),
    });
    expect(res.status).toBe(202);
    await page.goto(`${api.url}/dashboard`);
    await page.locator('#status', { hasText: 'updated' }).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator('#agents tbody tr').count(), { timeout: 15_000 }).toBe(2);
    expect(await rowOf('blue').innerText()).toMatch(/HEALTHY/);
    expect(await page.locator('#pools tbody').innerText()).toMatch(/flaky\.blue\s+1 of 1 serving\s+3/);
    await expect.poll(() => page.locator('#runs tbody').innerText(), { timeout: 15_000 }).toMatch(/dashboard-demo\s+completed\s+2 \/ 2\s+2 done/);
    // The list carries counts, not nodes; clicking a run reads its nodes (one page) and shows a dot per node.
    await page.locator('#runs tbody tr', { hasText: 'dashboard-demo' }).locator('button').click();
    await expect.poll(() => page.locator('#run-nodes span.done').count(), { timeout: 10_000 }).toBe(2);
    expect(await page.locator('#run-title').innerText()).toMatch(/dashboard-demo wf_\S+: completed/);
    // Schedules: the active one with its next fire (relative, the absolute time as its title), the paused one without.
    const hourly = scheduleRow('dash-every-hour');
    expect(await hourly.innerText()).toMatch(/dash-every-hour\s+hourly probe\s+every 1 h\s+task flaky\s+active\s+in (\d+ min|\d+ s)\b/);
    const next = hourly.locator('td.next');
    expect(Date.parse(await next.getAttribute('title') ?? '')).not.toBeNaN();
    expect(await hourly.locator('.state.active').count()).toBe(1);
    const nightly = scheduleRow('dash-nightly');
    expect(await nightly.innerText()).toMatch(/dash-nightly\s+cron 30 2 \* \* \* \(Europe\/Berlin\)\s+task flaky\s+paused\s+—/);
    expect(await nightly.locator('.state.paused').count()).toBe(1);
    expect(await page.locator('#status').innerText()).toMatch(/· 2 schedules/);
  }, 60_000);

  it('shows an agent turning UNHEALTHY, and its pool ineligible, without a reload', async () => {
    down.add('green');
    await expect.poll(() => rowOf('green').innerText(), { timeout: 20_000 }).toMatch(/UNHEALTHY/);
    await expect.poll(() => page.locator('#pools tbody tr', { hasText: 'flaky.green' }).innerText(), { timeout: 10_000 }).toMatch(/no: no HEALTHY or DEGRADED agent/);
    mkdirSync(`${ROOT}/test-output`, { recursive: true });
    await page.screenshot({ path: `${ROOT}/test-output/dashboard.png`, fullPage: true });
    down.delete('green');
    await expect.poll(() => rowOf('green').innerText(), { timeout: 20_000 }).toMatch(/\bHEALTHY/);
  }, 60_000);

  it('shows a schedule\'s last fire without a reload, and opens the run it started', async () => {
    expect((await post('/v1/schedules', { id: 'dash-pair', everyMs: 1000, workflow: { name: 'scheduled-pair', nodes: [{ id: 'a', type: 'flaky', payload: {} }] } })).status).toBe(201);
    await waitFor(async () => (await json(fetch(`${api.url}/v1/schedules/dash-pair`))).lastFire?.outcome === 'fired', { what: 'dash-pair fired', timeoutMs: 15_000 });
    const paused = await fetch(`${api.url}/v1/schedules/dash-pair`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paused: true }) });
    expect(paused.status).toBe(200);
    // Schedules are read every 5th tick (10 s), so the new one shows within about that, paused, with the run its last fire started.
    const row = scheduleRow('dash-pair');
    await expect.poll(() => row.innerText(), { timeout: 15_000 }).toMatch(/every 1 s\s+workflow scheduled-pair\s+paused\s+—\s+fired\s*wf_sched_dash-pair_\d+$/);
    expect(await row.locator('.state.fired').count()).toBe(1);
    const link = row.locator('td.last button');
    const runId = await link.innerText();
    await link.click();
    await expect.poll(() => page.locator('#run-title').innerText(), { timeout: 10_000 }).toBe(`scheduled-pair ${runId}: completed`);
    expect(await page.locator('#run-nodes span.done').count()).toBe(1);
  }, 60_000);

  it("shows a running task node's progress in the Task panel, moving until it completes", async () => {
    const res = await post('/v1/workflows', { name: 'progress-demo', nodes: [{ id: 'slow', type: 'flaky', payload: { latencyMs: 6000, progressSteps: 6 } }] });
    expect(res.status).toBe(202);
    const { id: runId } = (await res.json()) as { id: string };
    const runLink = page.locator('#runs tbody button.link', { hasText: runId });
    await expect.poll(() => runLink.count(), { timeout: 15_000 }).toBe(1);
    await runLink.click();
    const dot = page.locator('#run-nodes span.task[data-node="slow"]');
    await expect.poll(() => dot.count(), { timeout: 10_000 }).toBe(1);
    await dot.click();
    expect(await page.inputValue('#task-id')).toBe(`${runId}.slow`);
    const progress = page.locator('#task td[data-field="progress"]');
    // A value under 100 while it runs (read every 2 s; steps of 17 %), then 100 % once completed.
    await expect.poll(async () => ((await progress.count()) ? await progress.innerText() : ''), { timeout: 15_000 }).toMatch(/^\s*(17|33|50|67|83) %$/);
    await expect.poll(() => page.locator('#task td[data-field="state"]').innerText(), { timeout: 20_000 }).toBe('completed');
    expect((await progress.innerText()).trim()).toBe('100 %');
  }, 60_000);
});
