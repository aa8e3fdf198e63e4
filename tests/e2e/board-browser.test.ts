/**
 * Bull Board and the cross-site refusal in a real Chromium (issue 18, items 11 and 15): the board's
 * page renders under its CSP and asks no other host for anything; its own actions still work; a page
 * on another origin that auto-submits a form to the API is refused. Skips, saying why, without Chromium.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import demoTypes from '../../queues/index.ts';
import { CHROMIUM, findTool } from '../support/optional-tool.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const chromiumPath = findTool(CHROMIUM, 'tests/e2e/board-browser.test.ts');
const { prefix } = useRedisPrefix('e2e-board-browser');
let api: ApiServer;
let attacker: Server;
let attackerUrl: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!chromiumPath) return;
  api = await startApi({ config: testConfig(prefix, { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  // Another origin (another host name and port) whose page posts an empty text/plain form to the API on load.
  attacker = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(
      `<form id="f" method="POST" enctype="text/plain" action="${api.url}/v1/breakers/echo/default/reset"></form>` +
        '<script>document.getElementById("f").submit()</script>',
    );
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
}, 90_000);
afterAll(async () => {
  await browser?.close();
  if (attacker) await new Promise<void>((r) => attacker.close(() => r()));
  await api?.close();
});

describe.skipIf(!chromiumPath)('Bull Board and cross-site forms in a browser', () => {
  it('renders the board under its CSP, asking no other host for anything, and its own actions work', async () => {
    const elsewhere: string[] = [];
    const violations: string[] = [];
    page.on('request', (r) => void (r.url().startsWith(api.url) || elsewhere.push(r.url())));
    page.on('console', (m) => void (m.type() === 'error' && violations.push(m.text())));
    await page.goto(`${api.url}/admin/queues`);
    await page.getByText('echo.default').first().waitFor({ timeout: 15_000 });
    expect(elsewhere).toEqual([]);
    expect(violations.filter((v) => /Content Security Policy/i.test(v))).toEqual([]);
    // What the board's buttons send: same-origin requests without a body.
    const statuses = await page.evaluate(async () => {
      const put = async (p: string) => (await fetch(p, { method: 'PUT' })).status;
      return [await put('/admin/queues/api/queues/%7Becho.default%7D/pause'), await put('/admin/queues/api/queues/%7Becho.default%7D/resume')];
    });
    expect(statuses).toEqual([200, 200]);
  });

  it("refuses a form another origin's page submits to the API", async () => {
    const answered = new Promise<number>((resolve) => page.on('response', (r) => void (r.url().endsWith('/reset') && resolve(r.status()))));
    await page.goto(attackerUrl);
    expect(await answered).toBe(403);
    await waitFor(async () => (await page.content()).includes('cross-site request refused'), { what: 'the refusal shown', timeoutMs: 5000 });
  });
});
