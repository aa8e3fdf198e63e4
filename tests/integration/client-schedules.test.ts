/**
 * The typed client's schedule calls against a real API in this process: create, read, page through,
 * change, pause, resume and delete; the API's refusals as ApiError with the fields. The task of a
 * schedule is typed like `enqueue`'s (the @ts-expect-error lines are checked by `npm run typecheck`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { ApiError, createClient } from '../../src/client/client.ts';
import demoTypes from '../../queues/index.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('client-schedules');
let api: ApiServer;
beforeAll(async () => {
  api = await startApi({ config: testConfig(prefix, { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
});
afterAll(async () => {
  await api?.close();
});

const client = () => createClient({ url: api.url, types: demoTypes });

describe('the client, schedules', () => {
  it('creates a schedule, reads it back, and sees it fire', async () => {
    const created = await client().createSchedule({ id: 'c-every', name: 'every second', everyMs: 1000, task: { type: 'echo', payload: { message: 'tick' }, priority: 3 } });
    expect(created).toMatchObject({ id: 'c-every', name: 'every second', paused: false, everyMs: 1000, misfire: 'once', task: { type: 'echo', payload: { message: 'tick' }, priority: 3 } });
    expect(created.nextFires.length).toBeGreaterThan(0);
    const fired = await waitFor(async () => {
      const s = await client().schedule('c-every');
      return s.lastFire?.outcome === 'fired' && s.lastFire;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'a fire' });
    expect(fired.id).toMatch(/^echo~sched_c-every_\d+$/);
    expect((await client().get(fired.id!)).type).toBe('echo');
    await client().deleteSchedule('c-every');
  });

  it('pages through schedules oldest first, and iterates over all of them', async () => {
    const ids = ['c-page-1', 'c-page-2', 'c-page-3', 'c-page-4', 'c-page-5'];
    for (const id of ids) await client().createSchedule({ id, cron: '0 0 1 1 *', timeZone: 'Asia/Tokyo', workflow: { nodes: [{ id: 'a', type: 'echo', payload: {} }] } });
    const page = await client().schedules({ offset: 1, limit: 2 });
    expect(page.total).toBe(5);
    expect(page.schedules.map((s) => s.id)).toEqual(['c-page-2', 'c-page-3']);
    expect((await client().schedules()).schedules.map((s) => s.id)).toEqual(ids);
    const all: string[] = [];
    for await (const s of client().allSchedules(2)) all.push(s.id);
    expect(all).toEqual(ids);
    for (const id of ids) await client().deleteSchedule(id);
    expect(await client().schedules()).toEqual({ schedules: [], total: 0 });
  });

  it('changes, pauses and resumes a schedule, and deletes it', async () => {
    await client().createSchedule({ id: 'c-change', everyMs: 3_600_000, task: { type: 'echo', payload: {} } });
    const changed = await client().updateSchedule('c-change', { cron: '30 6 * * 1-5', timeZone: 'Europe/Berlin', name: 'weekday mornings' });
    expect(changed).toMatchObject({ cron: '30 6 * * 1-5', timeZone: 'Europe/Berlin', name: 'weekday mornings' });
    expect(changed.everyMs).toBeUndefined(); // a cron replaces the interval
    expect(changed.nextFires).toHaveLength(5);
    expect(await client().pauseSchedule('c-change')).toMatchObject({ paused: true, nextFires: [] });
    const resumed = await client().resumeSchedule('c-change');
    expect(resumed).toMatchObject({ paused: false, cron: '30 6 * * 1-5' });
    expect(resumed.nextFires).toEqual(changed.nextFires);
    await expect(client().deleteSchedule('c-change')).resolves.toBeUndefined();
    await expect(client().schedule('c-change')).rejects.toMatchObject({ status: 404 });
  });

  it('turns refusals into ApiError with the fields: a bad cron, an unknown type, a bad patch, a taken id', async () => {
    const bad = client().createSchedule({ cron: '61 * * * *', task: { type: 'echo', payload: {} } });
    await expect(bad).rejects.toBeInstanceOf(ApiError);
    await expect(bad).rejects.toMatchObject({ status: 400, errors: [{ path: 'cron' }] });
    const unknown = createClient({ url: api.url }).createSchedule({ everyMs: 1000, task: { type: 'no-such-type', payload: {} } });
    await expect(unknown).rejects.toMatchObject({ status: 400, errors: [expect.objectContaining({ path: 'task.type' })] });
    await client().createSchedule({ id: 'c-taken', everyMs: 60_000, paused: true, task: { type: 'echo', payload: {} } });
    await expect(client().createSchedule({ id: 'c-taken', everyMs: 60_000, task: { type: 'echo', payload: {} } })).rejects.toMatchObject({ status: 409 });
    await expect(client().updateSchedule('c-taken', { everyMs: 5 })).rejects.toMatchObject({ status: 400, errors: [expect.objectContaining({ path: 'everyMs' })] });
    await expect(client().pauseSchedule('none-such')).rejects.toMatchObject({ status: 404 });
    await client().deleteSchedule('c-taken');
  });
});

// Compile-time only: a scheduled task's payload is checked against its type, like enqueue's.
export function typeChecks(): void {
  const c = client();
  // @ts-expect-error transform's text must be a string
  void c.createSchedule({ everyMs: 1000, task: { type: 'transform', payload: { text: 5 } } });
  // @ts-expect-error no such agent type
  void c.createSchedule({ everyMs: 1000, task: { type: 'no-such-type', payload: {} } });
  // @ts-expect-error a scheduled task takes no idempotencyKey: each fire gets its own
  void c.updateSchedule('x', { task: { type: 'echo', payload: {}, idempotencyKey: 'k' } });
}
