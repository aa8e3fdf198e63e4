/** `switchyard schedules`: its flags as a request, the API's fields named by their flags, and the list's rows. */
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { ApiError, type ScheduleView } from '../../src/client/client.ts';
import { durationMs, flagOf, scheduleRequestFrom, scheduleRow, whenOf, withFlagNames } from '../../src/cli/schedules.ts';

describe('--every', () => {
  it('takes 30s, 5m, 1h, 2d, 1.5s and bare milliseconds', () => {
    expect(['30s', '5m', '1h', '2d', '1.5s', '1500', '1500ms', ' 10s '].map(durationMs)).toEqual([30_000, 300_000, 3_600_000, 172_800_000, 1500, 1500, 1500, 10_000]);
  });
  it('refuses what is not a whole number of milliseconds', () => {
    for (const bad of ['', 's', '-5s', '1w', '0', '0.5ms', '1e3', '5 fortnights']) expect(() => durationMs(bad), bad).toThrow(InvalidArgumentError);
  });
});

describe('schedules add, flags to request', () => {
  it('builds a task schedule, the payload {} unless given', async () => {
    expect(await scheduleRequestFrom({ every: 60_000, task: 'echo', pool: 'premium', priority: 0, tags: ['eu'] })).toEqual({
      everyMs: 60_000,
      task: { type: 'echo', payload: {}, pool: 'premium', priority: 0, tags: ['eu'] },
    });
    expect(await scheduleRequestFrom({ id: 'n', name: 'N', cron: '0 3 * * *', tz: 'Europe/Berlin', start: '2027-01-01T00:00:00Z', end: '2028-01-01T00:00:00Z', misfire: 'skip', paused: true, workflow: '{"nodes":[{"id":"a"}]}' })).toEqual({
      id: 'n', name: 'N', paused: true, cron: '0 3 * * *', timeZone: 'Europe/Berlin', startAt: '2027-01-01T00:00:00Z', endAt: '2028-01-01T00:00:00Z', misfire: 'skip', workflow: { nodes: [{ id: 'a' }] },
    });
  });
  it('asks for one timing and one target, and task flags only with --task', async () => {
    await expect(scheduleRequestFrom({ task: 'echo' })).rejects.toThrow(/one of --cron '<expr>' and --every/);
    await expect(scheduleRequestFrom({ cron: '* * * * *', every: 1000, task: 'echo' })).rejects.toThrow(/one of --cron/);
    await expect(scheduleRequestFrom({ every: 1000 })).rejects.toThrow(/one of --task <type> and --workflow/);
    await expect(scheduleRequestFrom({ every: 1000, workflow: '{}', pool: 'p', attempts: 2 })).rejects.toThrow(/--pool, --attempts go with --task/);
    await expect(scheduleRequestFrom({ every: 1000, workflow: 'no/such/file.json' })).rejects.toThrow(/cannot read no\/such\/file\.json/);
    await expect(scheduleRequestFrom({ every: 1000, task: 'echo', payload: '{oops' })).rejects.toThrow(/the payload is not JSON/);
  });
});

describe("the API's problems, named by flag", () => {
  it('maps each field to the flag that sets it', () => {
    const paths = ['cron', 'timeZone', 'everyMs', 'startAt', 'endAt', 'misfire', 'id', 'name', 'task', 'task.type', 'task.payload', 'task.payload.message', 'task.pool', 'task.priority', 'workflow', 'workflow.nodes[0].type', 'task.strategy', ''];
    expect(paths.map(flagOf)).toEqual(['--cron', '--tz', '--every', '--start', '--end', '--misfire', '--id', '--name', '--task', '--task', '--payload', '--payload', '--pool', '--priority', '--workflow', '--workflow', undefined, undefined]);
    const e = withFlagNames(new ApiError(400, 'Bad Request', 'schedule is invalid', [{ path: 'everyMs', message: 'too small' }, { path: '', message: 'x' }]));
    expect(e.errors).toEqual([{ path: 'everyMs (--every)', message: 'too small' }, { path: '', message: 'x' }]);
    expect(e.status).toBe(400);
  });
});

describe('schedules list rows', () => {
  const base: ScheduleView = { id: 's1', paused: false, misfire: 'once', everyMs: 30_000, task: { type: 'echo', payload: {} }, createdAt: '', updatedAt: '', nextFires: ['2027-01-01T00:00:30.000Z'] };
  it('says when it fires', () => {
    expect([1000, 30_000, 90_000, 300_000, 7_200_000, 86_400_000, 1500].map((everyMs) => whenOf({ everyMs }))).toEqual(['every 1 s', 'every 30 s', 'every 90 s', 'every 5 min', 'every 2 h', 'every 1 d', 'every 1500 ms']);
    expect(whenOf({ cron: '0 3 * * *', timeZone: 'Europe/Berlin' })).toBe('0 3 * * * Europe/Berlin');
  });
  it('shows what, paused, the next fire and the last', () => {
    expect(scheduleRow({ ...base, name: 'n', lastFire: { tick: '', at: '', outcome: 'fired', id: 'echo~sched_s1_1' } })).toEqual(['s1', 'n', 'every 30 s', 'task echo', 'no', '2027-01-01 00:00:30Z', 'fired echo~sched_s1_1']);
    const { task: _task, ...noTask } = base;
    expect(scheduleRow({ ...noTask, paused: true, nextFires: [], workflow: { name: 'nightly', nodes: [] }, lastFire: { tick: '', at: '', outcome: 'skipped', reason: 'paused' } })).toEqual(['s1', '', 'every 30 s', 'workflow nightly', 'yes', '-', 'skipped paused']);
    expect(scheduleRow({ ...base, task: { type: 'echo', payload: {}, pool: 'premium' } }).slice(3)).toEqual(['task echo.premium', 'no', '2027-01-01 00:00:30Z', '-']);
  });
});
