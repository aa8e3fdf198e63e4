/**
 * Schedules as the API sees them: create (validated in full first: its timing, and what it starts
 * against the catalogue, as if sent by hand), read with the next fire times and the last fire, change
 * (the result checked as a whole; `paused` pauses and resumes), delete. Each write sets the schedule
 * and its next tick in one script, so the timer (timer.ts) never sees one without the other.
 */
import { randomBytes } from 'node:crypto';
import type { Catalogue } from '../model/catalogue.ts';
import type { Logger } from '../config/logger.ts';
import { SwitchyardError, ValidationError, type FieldIssue } from '../model/errors.ts';
import {
  nextFireTimes,
  scheduleRequestOf,
  scheduleRequestSchema,
  schedulePatchSchema,
  scheduleSpec,
  tickAfter,
  type ScheduleRequest,
  type ScheduleSpec,
} from '../model/schedule.ts';
import { checkTaskRequest } from '../model/task-check.ts';
import { summarize, toFieldIssues } from '../model/validation.ts';
import { validateWorkflow } from '../model/workflow-definition.ts';
import type { RedisConnection } from '../redis/connection.ts';
import type { TaskProducer } from '../task/producer.ts';
import type { WorkflowRuns } from '../workflow/runs.ts';
import { ScheduleStore, type FireRecord } from './schedule-store.ts';
import { ScheduleTimer, type ScheduleTimerOptions } from './timer.ts';

export interface SchedulesOptions {
  redis: RedisConnection;
  prefix: string;
  catalogue: Catalogue;
  producer: TaskProducer;
  runs: WorkflowRuns;
  maxNodes: number;
  /** A tick whose process died while firing it is fired by another after about this long. */
  leaseMs: number;
  log: Logger;
  /** Told of every tick this process handles (metrics). */
  onFire?: ScheduleTimerOptions['onFire'];
}

/** A schedule as the API shows it: its definition, its next fire times and how its last tick went. */
export interface ScheduleView extends Omit<ScheduleSpec, 'startAt' | 'endAt' | 'createdAt' | 'updatedAt' | 'timeZone'> {
  timeZone?: string;
  startAt?: string;
  endAt?: string;
  createdAt: string;
  updatedAt: string;
  /** The next fire times (at most 5; none while paused or once ended). */
  nextFires: string[];
  lastFire?: { tick: string; at: string; outcome: FireRecord['outcome']; id?: string; reason?: string };
}

const NEXT_SHOWN = 5;
const iso = (ms: number) => new Date(ms).toISOString();

export class Schedules {
  readonly store: ScheduleStore;
  readonly #o: SchedulesOptions;
  #timer: ScheduleTimer | undefined;

  constructor(o: SchedulesOptions) {
    this.#o = o;
    this.store = new ScheduleStore(o.redis, o.prefix);
  }

  /** Validates and writes a new schedule (409 if its id is taken). */
  async create(raw: unknown): Promise<ScheduleView> {
    const req = this.#validate(scheduleRequestSchema, raw, 'schedule');
    const id = req.id ?? `s-${randomBytes(6).toString('base64url').replace(/_/g, '-')}`;
    const spec = scheduleSpec(id, req, Date.now());
    if (!(await this.store.create(spec, nextTick(spec)))) throw exists(id);
    this.#timer?.kick();
    return this.#view(spec, null); // new: no fire yet
  }

  async get(id: string): Promise<ScheduleView> {
    return this.#view(await this.#spec(id));
  }

  /** Schedules, oldest first, `limit` from `offset`. */
  async list(offset = 0, limit = 100): Promise<{ schedules: ScheduleView[]; total: number }> {
    const { schedules, total } = await this.store.page(offset, limit);
    const fires = await this.store.lastFires(schedules.map((s) => s.id));
    return { schedules: await Promise.all(schedules.map((s) => this.#view(s, fires.get(s.id) ?? null))), total };
  }

  /** Changes a schedule (the result is checked as a whole); `{ paused: true }` pauses it, `{ paused: false }` resumes it. */
  async update(id: string, raw: unknown): Promise<ScheduleView> {
    const current = await this.#spec(id);
    const patch = this.#validate(schedulePatchSchema, raw, 'schedule change');
    const merged = mergeTiming(scheduleRequestOf(current), patch);
    const req = this.#validate(scheduleRequestSchema, merged, 'schedule');
    const spec = scheduleSpec(id, req, Date.now(), current.createdAt);
    if (!(await this.store.update(spec, nextTick(spec)))) throw notFound(id);
    this.#timer?.kick();
    return this.#view(spec);
  }

  /** Deletes a schedule: a tick firing now either starts its task or nothing. */
  async remove(id: string): Promise<void> {
    if (!(await this.store.remove(id))) throw notFound(id);
  }

  /** Fires due ticks in this process (every API process does; each tick goes to one). */
  start(): void {
    const { producer, runs, leaseMs, log, onFire } = this.#o;
    this.#timer ??= new ScheduleTimer({ store: this.store, producer, runs, leaseMs, log, ...(onFire ? { onFire } : {}) });
    this.#timer.start();
  }

  async stop(): Promise<void> {
    await this.#timer?.stop();
  }

  async #spec(id: string): Promise<ScheduleSpec> {
    const spec = await this.store.get(id);
    if (!spec) throw notFound(id);
    return spec;
  }

  /** Validates a request's shape, then what it fires against the catalogue; every issue at once. */
  #validate<S extends typeof scheduleRequestSchema | typeof schedulePatchSchema>(schema: S, raw: unknown, what: string): ReturnType<S['parse']> {
    const parsed = schema.safeParse(raw);
    const issues: FieldIssue[] = parsed.success ? [] : toFieldIssues(parsed.error);
    const value = (parsed.success ? parsed.data : {}) as Partial<ScheduleRequest>;
    if (value.task) checkTaskRequest(value.task, 'task', this.#o.catalogue, issues);
    if (value.workflow) {
      try {
        validateWorkflow(value.workflow, this.#o.catalogue, this.#o.maxNodes, this.#o.runs.kinds);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        issues.push(...err.issues.map((i) => ({ path: i.path ? `workflow.${i.path}` : 'workflow', message: i.message })));
      }
    }
    if (issues.length > 0) throw new ValidationError(`${what} is invalid, nothing was written: ${summarize(issues)}`, issues);
    return value as ReturnType<S['parse']>;
  }

  /** `last`: its last fire as already read (null: none), or undefined to read it. */
  async #view(s: ScheduleSpec, last?: FireRecord | null): Promise<ScheduleView> {
    const fire = last === undefined ? (await this.store.lastFires([s.id])).get(s.id) : (last ?? undefined);
    const now = Date.now();
    const next = s.paused ? [] : nextFireTimes(s, now, NEXT_SHOWN);
    const { startAt, endAt, createdAt, updatedAt, timeZone, ...rest } = s;
    return {
      ...rest,
      ...(s.cron !== undefined ? { timeZone } : {}),
      ...(startAt !== undefined ? { startAt: iso(startAt) } : {}),
      ...(endAt !== undefined ? { endAt: iso(endAt) } : {}),
      createdAt: iso(createdAt),
      updatedAt: iso(updatedAt),
      nextFires: next.map(iso),
      ...(fire ? { lastFire: { ...fire, tick: iso(fire.tick), at: iso(fire.at) } } : {}),
    };
  }
}

/** The first tick of a schedule just written (none while paused, or once it has ended). */
const nextTick = (s: ScheduleSpec): number | undefined => (s.paused ? undefined : tickAfter(s, Date.now()));

/** A patch laid over a schedule: a new cron replaces an interval and the other way round; a new task replaces a workflow. */
function mergeTiming(current: Omit<ScheduleRequest, 'id'>, patch: Partial<ScheduleRequest>): Omit<ScheduleRequest, 'id'> {
  const merged: Omit<ScheduleRequest, 'id'> = { ...current, ...patch };
  if (patch.cron !== undefined) delete merged.everyMs;
  if (patch.everyMs !== undefined) {
    delete merged.cron;
    // The cron's time zone goes with it; one the patch itself gives is kept, and refused as for a POST.
    if (patch.timeZone === undefined) delete merged.timeZone;
  }
  if (patch.task !== undefined) delete merged.workflow;
  if (patch.workflow !== undefined) delete merged.task;
  return merged;
}

function notFound(id: string): SwitchyardError {
  return new SwitchyardError('SCHEDULE_NOT_FOUND', `no schedule with id ${JSON.stringify(id)}`);
}

function exists(id: string): SwitchyardError {
  return new SwitchyardError('SCHEDULE_EXISTS', `a schedule with id ${JSON.stringify(id)} exists already; change it with PATCH /v1/schedules/${id}`);
}
