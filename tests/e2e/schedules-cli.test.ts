/**
 * `switchyard schedules list|add|pause|resume|rm` as processes against an API process and an echo
 * agent: a schedule added with the CLI fires (its last fire names the task it started, which
 * `switchyard task` reads), pauses, resumes and goes; refused input exits 1 naming the field and its flag.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fastFleetEnv, runCli, startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { json } from '../support/http.ts';

const { prefix } = useRedisPrefix('e2e-schedules');
const env = fastFleetEnv(prefix);
let api: ApiProcess;

beforeAll(async () => {
  const [a] = await Promise.all([startApiProcess(env), startAgentProcess('echo', env)]);
  api = a as ApiProcess;
}, 90_000);

const cli = (...args: string[]) => runCli(args, api.url);

interface View {
  id: string;
  paused: boolean;
  nextFires: string[];
  lastFire?: { outcome: string; id?: string };
}

async function listed(): Promise<View[]> {
  const r = await cli('schedules', 'list', '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as View[];
}
/** The schedules as the API lists them (quicker than a CLI process, for checks after one). */
const overHttp = async () => ((await json(fetch(`${api.url}/v1/schedules`))) as { schedules: View[] }).schedules;

describe('switchyard schedules', () => {
  it('adds an every-second schedule of echo tasks, lists it, and it fires a task `switchyard task` reads', async () => {
    const add = await cli('schedules', 'add', '--id', 'cli-tick', '--name', 'ticker', '--every', '1s', '--task', 'echo', '--payload', '{"message":"tick"}');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^created schedule cli-tick \(ticker\): every 1 s, task echo\n {2}next fires: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);
    const fired = await waitFor(async () => {
      const s = (await listed()).find((v) => v.id === 'cli-tick');
      return s?.lastFire?.outcome === 'fired' && s.lastFire.id;
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'the schedule to fire' });
    expect(fired).toMatch(/^echo~sched_cli-tick_\d+$/);
    const task = await waitFor(async () => {
      const r = await cli('task', fired, '--json');
      const t = JSON.parse(r.stdout) as { state: string; type: string; result?: unknown };
      return t.state === 'completed' && t;
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'the fired task to complete' });
    expect(task).toMatchObject({ type: 'echo', result: { echoed: { message: 'tick' } } });
    const table = await cli('schedules', 'list');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+WHEN\s+WHAT\s+PAUSED\s+NEXT FIRE\s+LAST FIRE$/);
    expect(table.stdout).toMatch(/^cli-tick\s+ticker\s+every 1 s\s+task echo\s+no\s+\d{4}-\S+ \S+Z\s+fired echo~sched_cli-tick_\d+$/m);
  });

  it('pauses, resumes and removes it; removing it again exits 1', async () => {
    const pause = await cli('schedules', 'pause', 'cli-tick');
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toMatch(/^paused schedule cli-tick \(ticker\): every 1 s, task echo, paused\n$/);
    expect((await overHttp()).find((v) => v.id === 'cli-tick')).toMatchObject({ paused: true, nextFires: [] });
    const resume = await cli('schedules', 'resume', 'cli-tick', '--json');
    expect(resume.code, resume.stderr).toBe(0);
    expect(JSON.parse(resume.stdout)).toMatchObject({ id: 'cli-tick', paused: false, nextFires: expect.arrayContaining([expect.any(String)]) });
    const rm = await cli('schedules', 'rm', 'cli-tick');
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toBe('removed schedule cli-tick\n');
    expect((await overHttp()).map((v) => v.id)).not.toContain('cli-tick');
    const again = await cli('schedules', 'rm', 'cli-tick');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no schedule with id "cli-tick"/);
  });

  it('adds a cron schedule of a workflow file in a time zone: its next fires are 03:00 in Berlin', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-schedules-')), 'nightly.json');
    writeFileSync(file, JSON.stringify({ name: 'nightly', nodes: [{ id: 'a', type: 'echo', payload: {} }] }));
    const add = await cli('schedules', 'add', '--id', 'cli-nightly', '--cron', '0 3 * * *', '--tz', 'Europe/Berlin', '--workflow', file, '--misfire', 'skip', '--json');
    expect(add.code, add.stderr).toBe(0);
    const view = JSON.parse(add.stdout) as View & { cron: string; timeZone: string; misfire: string };
    expect(view).toMatchObject({ cron: '0 3 * * *', timeZone: 'Europe/Berlin', misfire: 'skip', paused: false });
    expect(view.nextFires).toHaveLength(5);
    for (const t of view.nextFires) expect(t).toMatch(/T0[12]:00:00\.000Z$/); // 03:00 CET or CEST
    const table = await cli('schedules', 'ls');
    expect(table.stdout).toMatch(/^cli-nightly\s+0 3 \* \* \* Europe\/Berlin\s+workflow nightly\s+no\s+/m);
    expect((await cli('schedules', 'rm', 'cli-nightly')).code).toBe(0);
  });

  it('refuses bad input with exit 1, naming the field and its flag, and creates nothing', async () => {
    const [cron, payload, tz, every, stray] = await Promise.all([
      cli('schedules', 'add', '--id', 'bad-1', '--cron', '61 * * * *', '--task', 'echo'),
      cli('schedules', 'add', '--id', 'bad-2', '--every', '1s', '--task', 'echo', '--payload', '{"message":5}'),
      cli('schedules', 'add', '--id', 'bad-3', '--cron', '0 3 * * *', '--tz', 'Mars/Olympus', '--task', 'echo'),
      cli('schedules', 'add', '--every', '5 fortnights', '--task', 'echo'),
      cli('schedules', 'add', '--every', '1m', '--workflow', '{"nodes":[]}', '--payload', '{}'),
    ]);
    expect(cron.code).toBe(1);
    expect(cron.stderr).toMatch(/^ {2}cron \(--cron\): /m);
    expect(payload.code).toBe(1);
    expect(payload.stderr).toMatch(/^ {2}task\.payload\.message \(--payload\): /m);
    expect(tz.code).toBe(1);
    expect(tz.stderr).toMatch(/^ {2}timeZone \(--tz\): an IANA time zone/m);
    expect(every.code).toBe(1);
    expect(every.stderr).toMatch(/--every.*a duration such as 30s/);
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(/--payload go with --task/);
    expect((await overHttp()).filter((s) => s.id.startsWith('bad-'))).toEqual([]);
  });
});
