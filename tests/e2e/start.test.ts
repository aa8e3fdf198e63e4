/**
 * `switchyard start` as a new user runs it (`npm start`): it prints the URLs and a curl, the curl
 * works as printed, and Ctrl-C (SIGINT) stops every process it started, letting running tasks finish
 * (a terminal's Ctrl-C reaches the whole process group); if it is killed outright, the processes it
 * started stop by themselves.
 */
import { execSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/redis/embedded.ts';
import { readLedger } from '../support/ledger.ts';
import { spawnSwitchyard, startApiProcess } from '../support/processes.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { json } from '../support/http.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-start');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('switchyard start', () => {
  it('runs the API and one agent per type, prints the banner once they are ready, serves the printed curl, and stops everything on SIGINT', async () => {
    const port = await freePort();
    // The flaky agent passes its health check only once this says so: it is the last agent to be ready.
    let downstreamUp = false;
    const downstream = createServer((_req, res) => res.writeHead(downstreamUp ? 200 : 503).end());
    await new Promise<void>((r) => downstream.listen(0, '127.0.0.1', r));
    const healthUrl = `http://127.0.0.1:${(downstream.address() as AddressInfo).port}/`;
    const start = spawnSwitchyard('start', ['start'], {
      REDIS_URL, SWITCHYARD_PREFIX: prefix, PORT: String(port), FLAKY_HEALTH_URL: healthUrl, SWITCHYARD_HEALTH_INTERVAL_MS: '200',
    });
    const readyTypes = async () => {
      const agents = (await json(fetch(`http://127.0.0.1:${port}/v1/agents`))) as { type: string; health: string }[];
      return new Set(agents.filter((a) => a.health === 'HEALTHY' || a.health === 'DEGRADED').map((a) => a.type));
    };
    await waitFor(async () => (await readyTypes()).size === 6, { timeoutMs: 60_000, what: 'every agent but flaky to be ready' });
    expect(start.output()).not.toContain('Switchyard is running');
    downstreamUp = true;
    await start.waitForOutput('Ctrl-C stops everything', 60_000);
    expect(await readyTypes()).toEqual(new Set(['echo', 'transform', 'flaky', 'etl', 'accounts', 'payments', 'send-email']));
    downstream.close();
    const out = start.output();
    expect(out).toContain(`API         http://127.0.0.1:${port}`);
    expect(out).toContain(`Bull Board  http://127.0.0.1:${port}/admin/queues`);
    expect(out).toMatch(/Agents\s+echo, transform, flaky, etl, accounts, payments, send-email \(pool default\)\n/);

    const curl = out.split('\n').find((l) => l.trim().startsWith('curl -s -X POST'))!.trim();
    const accepted = JSON.parse(execSync(curl, { encoding: 'utf8' })) as { id: string };
    const done = await waitFor(async () => {
      const t = (await json(fetch(`http://127.0.0.1:${port}/v1/tasks/${accepted.id}`))) as { state: string; result?: unknown };
      return t.state === 'completed' ? t : undefined;
    }, { what: 'the curl task to complete' });
    expect(done.result).toEqual({ echoed: { message: 'hello' } });

    const pids = [...new Set([...start.output().matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1])))];
    expect(pids.length).toBeGreaterThanOrEqual(8); // start, api, seven agents
    start.proc.kill('SIGINT');
    expect(await start.exited).toBe(0);
    await waitFor(() => pids.every((pid) => !alive(pid)), { what: 'every started process to exit' });
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('lets a running task finish, once, when Ctrl-C reaches the whole process group', async () => {
    const port = await freePort();
    const ledger = join(mkdtempSync(join(tmpdir(), 'switchyard-start-')), 'ledger.jsonl');
    // spawnSwitchyard starts it in its own process group, as a terminal runs `npm start`.
    const start = spawnSwitchyard('start', ['start'], { REDIS_URL, SWITCHYARD_PREFIX: prefix, PORT: String(port), FLAKY_LEDGER: ledger });
    await start.waitForOutput('Ctrl-C stops everything', 60_000);
    await waitFor(() => (start.output().match(/"msg":"agent started"/g) ?? []).length === 7, { timeoutMs: 60_000, what: 'seven agents started' });

    const res = await fetch(`http://127.0.0.1:${port}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'flaky', payload: { latencyMs: 3000 } }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await waitFor(() => readLedger(ledger).some((l) => l.id === id && l.ev === 'start'), { timeoutMs: 30_000, what: 'the 3 s task to start running' });

    // Ctrl-C in a terminal: SIGINT to every process of the group, the supervisor and its children alike.
    process.kill(-start.proc.pid!, 'SIGINT');
    expect(await start.exited).toBe(0);

    const runs = readLedger(ledger).filter((l) => l.id === id);
    expect(runs.map((l) => l.ev)).toEqual(['start', 'end']);
    const api = await startApiProcess({ REDIS_URL, SWITCHYARD_PREFIX: prefix });
    const task = (await json(fetch(`${api.url}/v1/tasks/${id}`))) as { state: string; attempts: { started: number } };
    expect(task.state).toBe('completed');
    expect(task.attempts.started).toBe(1);
    await api.kill();
  });

  it('leaves no orphans when it is killed with SIGKILL: its processes notice and stop', async () => {
    const port = await freePort();
    const start = spawnSwitchyard('start', ['start'], { REDIS_URL, SWITCHYARD_PREFIX: prefix, PORT: String(port) });
    await start.waitForOutput('Ctrl-C stops everything', 60_000);
    await waitFor(() => (start.output().match(/"msg":"agent started"/g) ?? []).length === 7, { timeoutMs: 60_000, what: 'seven agents started' });
    const children = [...new Set([...start.output().matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1])))].filter((pid) => pid !== start.proc.pid);
    expect(children.length).toBeGreaterThanOrEqual(8); // api and seven agents
    // Only the supervisor dies: its process group stays, as when it is killed alone in production.
    process.kill(start.proc.pid!, 'SIGKILL');
    await waitFor(() => children.every((pid) => !alive(pid)), { timeoutMs: 30_000, what: 'the orphaned processes to stop by themselves' });
  });
});
