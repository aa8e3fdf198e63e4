/**
 * `switchyard start` as a new user runs it (`npm start`): it prints the URLs and a curl, the curl
 * works as printed, and Ctrl-C (SIGINT) stops every process it started; if it is killed outright,
 * the processes it started stop by themselves.
 */
import { execSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/redis/embedded.ts';
import { spawnSwitchyard } from '../support/processes.ts';
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
  it('runs the API and one agent per type, serves the printed curl, and stops everything on SIGINT', async () => {
    const port = await freePort();
    const start = spawnSwitchyard('start', ['start'], { REDIS_URL, SWITCHYARD_PREFIX: prefix, PORT: String(port) });
    await start.waitForOutput('Ctrl-C stops everything', 60_000);
    const out = start.output();
    expect(out).toContain(`API         http://127.0.0.1:${port}`);
    expect(out).toContain(`Bull Board  http://127.0.0.1:${port}/admin/queues`);
    expect(out).toMatch(/Agents\s+echo, transform, flaky, etl, accounts, payments, send-email/);
    await waitFor(() => (start.output().match(/"msg":"agent started"/g) ?? []).length === 7, { timeoutMs: 60_000, what: 'seven agents started' });

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
