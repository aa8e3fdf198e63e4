/**
 * `switchyard schedules list|add|pause|resume|rm`: schedules (a task or a workflow started on a cron
 * expression or an interval) through the typed client. `add` builds the request from its flags and,
 * when the API refuses it, names each field with the flag that sets it. Exit codes as the other
 * client commands: 0 done, 1 error (the API refused, or cannot be reached).
 */
import { InvalidArgumentError } from 'commander';
import { ApiError, type ScheduleRequest, type ScheduleView } from '../client/client.ts';
import type { MisfirePolicy } from '../model/schedule.ts';
import { EXIT, readJsonArgument, withClient, type ClientCommandOptions } from './commands.ts';
import { table } from './table.ts';

type Out = Pick<NodeJS.WriteStream, 'write'>;

/** The misfire policies (model/schedule.ts's MISFIRE_POLICIES, not imported: the CLI loads no cron parser). */
export const MISFIRE_CHOICES: readonly MisfirePolicy[] = ['skip', 'once'];

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--every`: `30s`, `5m`, `1h`, `1.5h`, `2d`, or a number of milliseconds (`1500`, `1500ms`). */
export function durationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? 'ms']! : NaN;
  if (!Number.isInteger(ms) || ms <= 0) throw new InvalidArgumentError('a duration such as 30s, 5m, 1h, 2d, or milliseconds (1500)');
  return ms;
}

export interface ScheduleAddFlags {
  cron?: string;
  tz?: string;
  every?: number;
  id?: string;
  name?: string;
  start?: string;
  end?: string;
  misfire?: MisfirePolicy;
  paused?: boolean;
  task?: string;
  payload?: string;
  pool?: string;
  priority?: number;
  attempts?: number;
  tags?: string[];
  workflow?: string;
}

const TASK_FLAGS = ['payload', 'pool', 'priority', 'attempts', 'tags'] as const;

/** What is missing or out of place among the flags (the API checks the values). */
function flagProblem(f: ScheduleAddFlags): string | undefined {
  if ((f.cron === undefined) === (f.every === undefined)) return "give one of --cron '<expr>' and --every <duration>: when it fires";
  if ((f.task === undefined) === (f.workflow === undefined)) return 'give one of --task <type> and --workflow <file>: what each fire starts';
  const strayed = TASK_FLAGS.filter((k) => f[k] !== undefined);
  if (f.task === undefined && strayed.length > 0) return `${strayed.map((k) => `--${k}`).join(', ')} go with --task <type>`;
  return undefined;
}

/** The request `schedules add` sends: its flags as the API's fields, the payload or workflow read from JSON or a file. */
export async function scheduleRequestFrom(f: ScheduleAddFlags): Promise<ScheduleRequest> {
  const problem = flagProblem(f);
  if (problem) throw new ApiError(0, 'Invalid flags', problem);
  const task = f.task === undefined ? undefined : {
    type: f.task,
    payload: f.payload === undefined ? {} : await readJsonArgument(f.payload),
    ...(f.pool !== undefined ? { pool: f.pool } : {}),
    ...(f.priority !== undefined ? { priority: f.priority } : {}),
    ...(f.attempts !== undefined ? { attempts: f.attempts } : {}),
    ...(f.tags !== undefined ? { tags: f.tags } : {}),
  };
  // --workflow takes @file.json or inline JSON like --payload, and a bare path like `workflow run`.
  const workflowArg = f.workflow === undefined || /^\s*[@{]/.test(f.workflow) ? f.workflow : `@${f.workflow}`;
  const workflow = workflowArg === undefined ? undefined : ((await readJsonArgument(workflowArg, 'the workflow')) as ScheduleRequest['workflow']);
  return {
    ...(f.id !== undefined ? { id: f.id } : {}),
    ...(f.name !== undefined ? { name: f.name } : {}),
    ...(f.paused ? { paused: true } : {}),
    ...(f.cron !== undefined ? { cron: f.cron } : {}),
    ...(f.tz !== undefined ? { timeZone: f.tz } : {}),
    ...(f.every !== undefined ? { everyMs: f.every } : {}),
    ...(f.start !== undefined ? { startAt: f.start } : {}),
    ...(f.end !== undefined ? { endAt: f.end } : {}),
    ...(f.misfire !== undefined ? { misfire: f.misfire } : {}),
    ...(task ? { task } : {}),
    ...(workflow !== undefined ? { workflow } : {}),
  };
}

const FLAGS: Record<string, string> = {
  id: '--id', name: '--name', paused: '--paused', cron: '--cron', timeZone: '--tz', everyMs: '--every',
  startAt: '--start', endAt: '--end', misfire: '--misfire', workflow: '--workflow',
};

/** The flag of `schedules add` that sets an API field (`task.payload.x` -> --payload), if one does. */
export function flagOf(path: string): string | undefined {
  const [head = '', sub] = path.split(/[.[]/);
  if (head !== 'task') return FLAGS[head];
  if (sub === undefined || sub === 'type') return '--task';
  return sub === 'payload' || (TASK_FLAGS as readonly string[]).includes(sub) ? `--${sub}` : undefined;
}

/** The API's problem with each field's flag beside it: `cron (--cron): ...`. */
export function withFlagNames(e: ApiError): ApiError {
  const named = e.errors.map((i) => {
    const flag = flagOf(i.path);
    return flag ? { ...i, path: `${i.path} (${flag})` } : i;
  });
  return new ApiError(e.status, e.title, e.detail, named);
}

const UNIT_NAMES: ReadonlyArray<[number, string]> = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']];
const shortTime = (iso: string) => iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');

/** When it fires: `0 3 * * * Europe/Berlin`, or `every 30 s`. */
export function whenOf(s: Pick<ScheduleView, 'cron' | 'timeZone' | 'everyMs'>): string {
  if (s.cron !== undefined) return `${s.cron} ${s.timeZone ?? 'UTC'}`;
  const ms = s.everyMs ?? 0;
  const [size, unit] = UNIT_NAMES.find(([n]) => ms % n === 0) ?? [1, 'ms'];
  return `every ${ms / size} ${unit}`;
}

/** What each fire starts: `task echo`, `task echo.premium`, `workflow nightly`. */
export const whatOf = (s: Pick<ScheduleView, 'task' | 'workflow'>): string =>
  s.task ? `task ${s.task.type}${s.task.pool ? `.${s.task.pool}` : ''}` : `workflow ${s.workflow?.name ?? '(unnamed)'}`;

/** One line of `schedules list`. */
export function scheduleRow(s: ScheduleView): string[] {
  const last = s.lastFire ? `${s.lastFire.outcome} ${s.lastFire.id ?? (s.lastFire.reason ?? '').slice(0, 60)}`.trimEnd() : '-';
  return [s.id, s.name ?? '', whenOf(s), whatOf(s), s.paused ? 'yes' : 'no', s.nextFires[0] ? shortTime(s.nextFires[0]) : '-', last];
}

const SCHEDULE_COLUMNS = ['ID', 'NAME', 'WHEN', 'WHAT', 'PAUSED', 'NEXT FIRE', 'LAST FIRE'];

/** A schedule as `add`, `pause` and `resume` print it. */
function describeSchedule(verb: string, s: ScheduleView): string {
  const lines = [`${verb} schedule ${s.id}${s.name ? ` (${s.name})` : ''}: ${whenOf(s)}, ${whatOf(s)}${s.paused ? ', paused' : ''}`];
  if (s.nextFires.length > 0) lines.push(`  next fires: ${s.nextFires.map(shortTime).join(', ')}`);
  else if (!s.paused) lines.push('  no fire to come (its end has passed)');
  return `${lines.join('\n')}\n`;
}

export async function schedulesListCommand(o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const all: ScheduleView[] = [];
    for await (const s of c.allSchedules()) all.push(s);
    out.write(o.json ? `${JSON.stringify(all)}\n` : table(SCHEDULE_COLUMNS, all.map(scheduleRow)));
    return EXIT.ok;
  });
}

export async function scheduleAddCommand(f: ScheduleAddFlags, o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const request = await scheduleRequestFrom(f);
    const view = await c.createSchedule(request).catch((e: unknown) => {
      throw e instanceof ApiError ? withFlagNames(e) : e;
    });
    out.write(o.json ? `${JSON.stringify(view)}\n` : describeSchedule('created', view));
    return EXIT.ok;
  });
}

/** `schedules pause|resume|rm <id>`. */
export async function scheduleActionCommand(action: 'pause' | 'resume' | 'rm', id: string, o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    if (action === 'rm') {
      await c.deleteSchedule(id);
      out.write(o.json ? `${JSON.stringify({ id, removed: true })}\n` : `removed schedule ${id}\n`);
      return EXIT.ok;
    }
    const view = action === 'pause' ? await c.pauseSchedule(id) : await c.resumeSchedule(id);
    out.write(o.json ? `${JSON.stringify(view)}\n` : describeSchedule(action === 'pause' ? 'paused' : 'resumed', view));
    return EXIT.ok;
  });
}
