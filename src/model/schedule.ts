/**
 * A schedule: when it fires (a cron expression in an IANA time zone, or a fixed interval, between an
 * optional start and end) and what it fires (a task or a workflow, validated like one sent by hand,
 * and routed at each fire). Its request shape, its checks, and the fire times it will have: pure, so
 * the API, the CLI and the tests compute the same times. Cron times come from cron-parser (the one
 * BullMQ's job schedulers use), so what a schedule shows is what fires; across daylight saving it
 * fires once a day for a daily time, whether that time is skipped (spring: the next valid time) or
 * repeated (autumn: the first).
 */
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { LONE_TASK_OPTIONS, taskRequestSchema } from './task-request.ts';
import { workflowRequestSchema } from './workflow-definition.ts';

/** Schedule ids become part of task and run ids (`<type>~sched_<id>_<tick>`): letters, digits and `-`. */
export const SCHEDULE_ID_PATTERN = /^[A-Za-z0-9-]{1,40}$/;
/** What happens to a fire found late (nothing ran at its time): `skip` it, or run it `once` (never more than once). */
export const MISFIRE_POLICIES = ['skip', 'once'] as const;
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number];
/** A fire this much later than its tick counts as missed (a fire taken over from a dead API process is late by far less). */
export const MISFIRE_GRACE_MS = 60_000;
export const MIN_EVERY_MS = 1000;
/** The last instant an ISO 8601 date-time can name with four year digits: a schedule has no tick after it. */
export const LAST_TICK = Date.parse('9999-12-31T23:59:59.999Z');
const MAX_EVERY_MS = 366 * 86_400_000;

/** Whether `tz` is a time zone this runtime knows (IANA names such as Europe/Berlin, or UTC). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why a cron expression is refused, or undefined if it parses (5 fields, or 6 with seconds first) and
 * some date matches it. `H` (a hashed value) is refused: cron-parser draws it at random on each parse,
 * so the times shown would not be the times fired.
 */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6) return `a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds first), got ${fields.length}`;
  if (fields.some((f) => /(^|[^a-z])h(?![a-z])/i.test(f))) {
    return 'H (a hashed value) is not supported: give the minute, hour, ... itself';
  }
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC' }).next();
    return undefined;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return /loop limit|invalid explicit day/i.test(reason) ? `no date matches it, so it would never fire (${reason})` : `not a valid cron expression: ${reason}`;
  }
}

const instant = z.iso.datetime({ offset: true, message: 'an ISO 8601 date-time with a time zone, e.g. 2027-01-01T00:00:00Z' });

/** When a schedule fires. */
const timingShape = {
  cron: z.string().max(200).superRefine((v, ctx) => {
    const problem = cronProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }).optional(),
  timeZone: z.string().max(64).refine(isTimeZone, 'an IANA time zone such as Europe/Berlin or UTC').optional(),
  everyMs: z.number().int().min(MIN_EVERY_MS).max(MAX_EVERY_MS).optional(),
  startAt: instant.optional(),
  endAt: instant.optional(),
  misfire: z.enum(MISFIRE_POLICIES).optional(),
};

/** What a schedule fires: a task (per-task options but those for a lone request: each fire gets its own id) or a workflow. */
export const scheduledTaskSchema = taskRequestSchema.omit(LONE_TASK_OPTIONS);
export const scheduledWorkflowSchema = workflowRequestSchema.omit({ idempotencyKey: true });

const targetShape = {
  task: scheduledTaskSchema.optional(),
  workflow: scheduledWorkflowSchema.optional(),
};

export const scheduleRequestSchema = z
  .strictObject({
    id: z.string().regex(SCHEDULE_ID_PATTERN, 'letters, digits and - (1-40 characters)').optional(),
    name: z.string().min(1).max(200).optional(),
    paused: z.boolean().optional(),
    ...timingShape,
    ...targetShape,
  })
  .superRefine(checkWhole);

/** PATCH: any field but the id; the result is checked as a whole schedule. */
export const schedulePatchSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  paused: z.boolean().optional(),
  ...timingShape,
  ...targetShape,
});

export type ScheduleRequest = z.output<typeof scheduleRequestSchema>;
export type SchedulePatch = z.output<typeof schedulePatchSchema>;

/** A schedule as stored: every default filled in. */
export interface ScheduleSpec {
  id: string;
  name?: string;
  paused: boolean;
  cron?: string;
  timeZone: string;
  everyMs?: number;
  startAt?: number;
  endAt?: number;
  misfire: MisfirePolicy;
  task?: z.output<typeof scheduledTaskSchema>;
  workflow?: z.output<typeof scheduledWorkflowSchema>;
  createdAt: number;
  updatedAt: number;
}

/** One of cron and everyMs, one of task and workflow, a time zone only with cron, an end after the start. */
function checkWhole(s: Partial<ScheduleRequest>, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if ((s.cron === undefined) === (s.everyMs === undefined)) issue('cron', 'give exactly one of cron (with timeZone) and everyMs');
  if (s.timeZone !== undefined && s.cron === undefined) issue('timeZone', 'timeZone applies to cron schedules only');
  if ((s.task === undefined) === (s.workflow === undefined)) issue('task', 'give exactly one of task and workflow: what each fire starts');
  if (s.startAt && s.endAt && Date.parse(s.endAt) <= Date.parse(s.startAt)) issue('endAt', 'endAt must be after startAt');
}

/** The stored form of a validated request (the target already checked against the catalogue by the caller). */
export function scheduleSpec(id: string, r: Omit<ScheduleRequest, 'id'>, now: number, createdAt = now): ScheduleSpec {
  return {
    id,
    ...(r.name ? { name: r.name } : {}),
    paused: r.paused ?? false,
    ...(r.cron !== undefined ? { cron: r.cron.trim() } : {}),
    timeZone: r.timeZone ?? 'UTC',
    ...(r.everyMs !== undefined ? { everyMs: r.everyMs } : {}),
    ...(r.startAt ? { startAt: Date.parse(r.startAt) } : {}),
    ...(r.endAt ? { endAt: Date.parse(r.endAt) } : {}),
    misfire: r.misfire ?? 'once',
    ...(r.task ? { task: r.task } : {}),
    ...(r.workflow ? { workflow: r.workflow } : {}),
    createdAt,
    updatedAt: now,
  };
}

/** A stored schedule as a request again (for PATCH: the patch is laid over it, then checked as a whole). */
export function scheduleRequestOf(s: ScheduleSpec): Omit<ScheduleRequest, 'id'> {
  return {
    ...(s.name ? { name: s.name } : {}),
    paused: s.paused,
    ...(s.cron !== undefined ? { cron: s.cron, timeZone: s.timeZone } : {}),
    ...(s.everyMs !== undefined ? { everyMs: s.everyMs } : {}),
    ...(s.startAt !== undefined ? { startAt: new Date(s.startAt).toISOString() } : {}),
    ...(s.endAt !== undefined ? { endAt: new Date(s.endAt).toISOString() } : {}),
    misfire: s.misfire,
    ...(s.task ? { task: s.task } : {}),
    ...(s.workflow ? { workflow: s.workflow } : {}),
  };
}

/**
 * The first tick strictly after `after` (ms), or undefined once the schedule has ended. Cron ticks
 * come from the expression in the schedule's time zone; interval ticks are aligned, `startAt +
 * k * everyMs` (from the Unix epoch without a start), so they do not depend on when it was created.
 */
export function tickAfter(s: Pick<ScheduleSpec, 'cron' | 'timeZone' | 'everyMs' | 'startAt' | 'endAt'>, after: number): number | undefined {
  const from = Math.max(after, (s.startAt ?? -Infinity) - 1);
  let t: number;
  if (s.cron !== undefined) {
    try {
      t = CronExpressionParser.parse(s.cron, { tz: s.timeZone, currentDate: new Date(from) }).next().getTime();
    } catch {
      return undefined; // no date matches (30 February): it never fires
    }
  } else {
    const every = s.everyMs!;
    const phase = s.startAt ?? 0;
    t = phase + (Math.floor((from - phase) / every) + 1) * every;
  }
  return t > Math.min(s.endAt ?? LAST_TICK, LAST_TICK) ? undefined : t;
}

/** The next `n` fire times after `after` (ms), within the schedule's start and end. */
export function nextFireTimes(s: Pick<ScheduleSpec, 'cron' | 'timeZone' | 'everyMs' | 'startAt' | 'endAt'>, after: number, n: number): number[] {
  const out: number[] = [];
  for (let t = tickAfter(s, after); t !== undefined && out.length < n; t = tickAfter(s, t)) out.push(t);
  return out;
}

/**
 * The tick after the one just fired (`tick`), at `now`. Ticks missed while nothing ran (older than
 * MISFIRE_GRACE_MS) collapse: the fire that found them late was their one catch-up (misfire `once`)
 * or their skip, and the next tick is the first one to come.
 */
export function tickAfterFire(s: Pick<ScheduleSpec, 'cron' | 'timeZone' | 'everyMs' | 'startAt' | 'endAt'>, tick: number, now: number): number | undefined {
  const next = tickAfter(s, tick);
  return next !== undefined && next < now - MISFIRE_GRACE_MS ? tickAfter(s, now) : next;
}

/** The ids a fire's task or run gets: they name the schedule and the tick, and repeat for a repeated fire. */
export const fireTaskId = (type: string, scheduleId: string, tick: number): string => `${type}~sched_${scheduleId}_${tick}`;
export const fireRunId = (scheduleId: string, tick: number): string => `wf_sched_${scheduleId}_${tick}`;

/** The schedule and tick a task or run id names, if a schedule fired it. */
export function firedBy(id: string): { schedule: string; tick: number } | undefined {
  const m = /(?:~|^wf_)sched_([A-Za-z0-9-]{1,40})_(\d{1,16})$/.exec(id);
  return m ? { schedule: m[1]!, tick: Number(m[2]) } : undefined;
}
