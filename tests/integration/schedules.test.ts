/**
 * Schedules through the HTTP API against real Redis and BullMQ: two API processes' worth of
 * services (two startApi in this process) and an agent. Each tick starts one task (or run) whose id
 * names the schedule and the tick; bad input is refused whole; pause, resume, change and delete.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { firedBy } from '../../src/model/schedule.ts';
import { keysMatching, REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { ledger, step, stepWorker } from '../support/workflow-types.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';
import { json } from '../support/http.ts';

const { prefix, redis } = useRedisPrefix('schedules');

let api: ApiServer;
let second: ApiServer;
let agent: Agent;

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0 });
  api = await startApi({ config, catalogue: new Catalogue([step]), redisUrl: REDIS_URL, log: silentLog });
  second = await startApi({ config, catalogue: new Catalogue([step]), redisUrl: REDIS_URL, log: silentLog });
  agent = await Agent.start({ definition: stepWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 20 });
});

afterAll(async () => {
  await agent.close(0);
  await Promise.all([api.close(), second.close()]);
});

const call = (method: string, path: string, body?: unknown) =>
  fetch(`${api.url}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
const keysUnder = async (pattern: string) => (await keysMatching(redis, `${prefix}:${pattern}`)).sort();
const executions = (schedule: string) => ledger.filter((e) => firedBy(e.node)?.schedule === schedule);

describe('schedules', () => {
  it('fires a task at each tick, once, across two API processes, with ids that name the schedule and the tick', async () => {
    const res = await call('POST', '/v1/schedules', { id: 'every-second', everyMs: 1000, task: { type: 'step', payload: {} } });
    expect(res.status).toBe(201);
    const view = await json(res);
    expect(view).toMatchObject({ id: 'every-second', paused: false, everyMs: 1000, misfire: 'once' });
    expect(view.nextFires.length).toBeGreaterThan(0);
    await waitFor(() => executions('every-second').length >= 3, { timeoutMs: 15_000, what: 'three fires' });
    const ticks = executions('every-second').map((e) => firedBy(e.node)!.tick);
    expect(new Set(ticks).size).toBe(ticks.length); // no tick ran twice
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBe(1000);
    const last = (await json(call('GET', '/v1/schedules/every-second'))).lastFire;
    expect(last).toMatchObject({ outcome: 'fired', id: expect.stringMatching(/^step~sched_every-second_\d+$/) });
    const task = await json(call('GET', `/v1/tasks/${last.id}`));
    expect(task.type).toBe('step');
    // Both API processes count what they fired; their sum covers every fire so far.
    const fired = await Promise.all([api, second].map(async (a) => {
      const text = await (await fetch(`${a.url}/metrics`)).text();
      expect(text).toMatch(/^switchyard_schedules\{state="scheduled"\} [1-9]/m);
      return Number(/^switchyard_schedule_fires_total\{outcome="fired"\} (\d+)/m.exec(text)?.[1] ?? 0);
    }));
    expect(fired[0]! + fired[1]!).toBeGreaterThanOrEqual(3);
    expect(await call('DELETE', '/v1/schedules/every-second')).toHaveProperty('status', 204);
  });

  it('pauses and resumes: nothing fires while paused', async () => {
    await call('POST', '/v1/schedules', { id: 'pausable', everyMs: 1000, task: { type: 'step', payload: {} } });
    await waitFor(() => executions('pausable').length >= 1, { timeoutMs: 10_000, what: 'a first fire' });
    const paused = await json(call('PATCH', '/v1/schedules/pausable', { paused: true }));
    expect(paused).toMatchObject({ paused: true, nextFires: [] });
    await new Promise((r) => setTimeout(r, 1200)); // a fire scheduled before the pause may still start: let it
    const before = executions('pausable').length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(executions('pausable').length).toBe(before);
    const resumed = await json(call('PATCH', '/v1/schedules/pausable', { paused: false }));
    expect(resumed.paused).toBe(false);
    await waitFor(() => executions('pausable').length > before, { timeoutMs: 10_000, what: 'a fire after resuming' });
    await call('DELETE', '/v1/schedules/pausable');
  });

  it('fires workflows: each tick one run, named after the schedule and the tick', async () => {
    await call('POST', '/v1/schedules', { id: 'nightly-like', everyMs: 1000, workflow: { name: 'pair', nodes: [{ id: 'a', type: 'step', payload: {} }, { id: 'b', type: 'step', payload: {}, dependsOn: ['a'] }] } });
    await waitFor(async () => (await json(call('GET', '/v1/schedules/nightly-like'))).lastFire?.outcome === 'fired', { timeoutMs: 10_000, what: 'a fire' });
    const { lastFire } = await json(call('GET', '/v1/schedules/nightly-like'));
    expect(lastFire.id).toMatch(/^wf_sched_nightly-like_\d+$/);
    await waitFor(async () => (await json(call('GET', `/v1/workflows/${lastFire.id}`))).state === 'completed', { what: 'the run completes' });
    await call('DELETE', '/v1/schedules/nightly-like');
  });

  it('shows the next five cron times in the schedule time zone, across a daylight saving change', async () => {
    const res = await call('POST', '/v1/schedules', { id: 'daily-0230', cron: '30 2 * * *', timeZone: 'America/New_York', startAt: '2027-03-12T00:00:00Z', task: { type: 'step', payload: {} } });
    expect(res.status).toBe(201);
    const { nextFires } = await json(res);
    // 2027-03-14 is the spring-forward day: 02:30 does not exist there and fires once, at 03:30 EDT.
    expect(nextFires).toEqual(['2027-03-12T07:30:00.000Z', '2027-03-13T07:30:00.000Z', '2027-03-14T07:30:00.000Z', '2027-03-15T06:30:00.000Z', '2027-03-16T06:30:00.000Z']);
    await call('DELETE', '/v1/schedules/daily-0230');
  });

  it('refuses bad input with a 400 naming the field, and writes nothing', async () => {
    const before = await keysUnder('{schedules}*');
    const cases: Array<[unknown, string]> = [
      [{ cron: '61 * * * *', task: { type: 'step', payload: {} } }, 'cron'],
      [{ cron: '* * *', task: { type: 'step', payload: {} } }, 'cron'],
      [{ cron: 'H H 1 1 *', task: { type: 'step', payload: {} } }, 'cron'],
      [{ cron: '0 0 31 2,4 *', task: { type: 'step', payload: {} } }, 'cron'],
      [{ cron: '0 * * * *', timeZone: 'Mars/Olympus', task: { type: 'step', payload: {} } }, 'timeZone'],
      [{ everyMs: 0, task: { type: 'step', payload: {} } }, 'everyMs'],
      [{ everyMs: -5, task: { type: 'step', payload: {} } }, 'everyMs'],
      [{ everyMs: 1000, task: { type: 'nope', payload: {} } }, 'task.type'],
      [{ everyMs: 1000, task: { type: 'step', payload: { ms: 'slow' } } }, 'task.payload.ms'],
      [{ everyMs: 1000, workflow: { nodes: [{ id: 'a', type: 'nope', payload: {} }] } }, 'workflow.nodes[0].type'],
      [{ everyMs: 1000 }, 'task'],
      [{ everyMs: 1000, cron: '* * * * *', task: { type: 'step', payload: {} } }, 'cron'],
      [{ id: 'has space', everyMs: 1000, task: { type: 'step', payload: {} } }, 'id'],
      [{ everyMs: 1000, startAt: '2027-01-02T00:00:00Z', endAt: '2027-01-01T00:00:00Z', task: { type: 'step', payload: {} } }, 'endAt'],
    ];
    for (const [body, path] of cases) {
      const res = await call('POST', '/v1/schedules', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = await json(res);
      expect(problem.errors.map((e: { path: string }) => e.path), JSON.stringify(body)).toContain(path);
    }
    expect(await keysUnder('{schedules}*')).toEqual(before);
    // A change is checked as a whole: an interval with a time zone is refused as in a POST.
    expect((await call('POST', '/v1/schedules', { id: 'cron-one', cron: '0 3 * * *', timeZone: 'Europe/Paris', task: { type: 'step', payload: {} } })).status).toBe(201);
    const patched = await call('PATCH', '/v1/schedules/cron-one', { everyMs: 3_600_000, timeZone: 'Europe/Paris' });
    expect(patched.status).toBe(400);
    expect((await json(patched)).errors.map((e: { path: string }) => e.path)).toContain('timeZone');
    expect(await json(call('GET', '/v1/schedules/cron-one'))).toMatchObject({ cron: '0 3 * * *', timeZone: 'Europe/Paris' });
    await call('DELETE', '/v1/schedules/cron-one');
  });

  it('answers 404 for an unknown schedule and 409 for a taken id', async () => {
    expect((await call('GET', '/v1/schedules/none-such')).status).toBe(404);
    expect((await call('PATCH', '/v1/schedules/none-such', { paused: true })).status).toBe(404);
    expect((await call('DELETE', '/v1/schedules/none-such')).status).toBe(404);
    const body = { id: 'taken', cron: '0 0 1 1 *', task: { type: 'step', payload: {} } };
    expect((await call('POST', '/v1/schedules', body)).status).toBe(201);
    const again = await call('POST', '/v1/schedules', body);
    expect(again.status).toBe(409);
    expect((await json(call('GET', '/v1/schedules'))).schedules.map((s: { id: string }) => s.id)).toContain('taken');
    await call('DELETE', '/v1/schedules/taken');
  });
});
