/**
 * Schedules: tasks and workflows started on a cron expression (in an IANA time zone) or a fixed
 * interval. The timing is BullMQ's: each active schedule is a job scheduler on the timer queue
 * `{schedules}`, which holds one delayed fire job for its next tick and adds the next when a fire
 * starts. Every API process runs a Worker on that queue; BullMQ hands each fire to one of them,
 * and a fire whose process died is taken over once its lock expires. A fire reads the schedule's
 * definition and starts an ordinary task (routed now, like any other) or workflow run, whose id names
 * the schedule and the tick and whose idempotency key is the tick's: a fire that runs twice (taken
 * over after a crash) finds the first one's task or run, so each tick starts at most one, and a tick
 * is never dropped: its fire job waits in Redis until some API process runs it.
 *
 * Writes are ordered so that a crash between two leaves nothing half done that a fire would act on:
 * a new schedule's job scheduler is added before its definition (a fire without a definition removes
 * its scheduler), a deleted one's definition goes first, a paused one's too (a fire of a paused
 * schedule removes its scheduler). On start, every active definition without a scheduler gets one.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { randomBytes } from 'node:crypto';
import type { Catalogue } from '../model/catalogue.ts';
import type { Logger } from '../config/logger.ts';
import { isSwitchyardError, SwitchyardError, ValidationError, type FieldIssue } from '../model/errors.ts';
import { SCHEDULE_QUEUE } from '../model/names.ts';
import {
  fireRunId,
  fireTaskId,
  MISFIRE_GRACE_MS,
  nextFireTimes,
  scheduleRequestOf,
  scheduleRequestSchema,
  schedulePatchSchema,
  scheduleSpec,
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

export interface SchedulesOptions {
  redis: RedisConnection;
  prefix: string;
  catalogue: Catalogue;
  producer: TaskProducer;
  runs: WorkflowRuns;
  maxNodes: number;
  /** The fire Worker's lock: a fire whose process died is taken over after about this long. */
  lockMs: number;
  stalledIntervalMs: number;
  log: Logger;
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

/** The fire job BullMQ adds at each tick: it carries nothing but its tick (the definition is read when it runs). */
const FIRE_TEMPLATE = {
  name: 'fire',
  data: {},
  opts: { attempts: 8, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { count: 1000 } },
};
const NEXT_SHOWN = 5;
const iso = (ms: number) => new Date(ms).toISOString();

export class Schedules {
  readonly store: ScheduleStore;
  readonly #o: SchedulesOptions;
  readonly #queue: Queue;
  #worker: Worker | undefined;

  constructor(o: SchedulesOptions) {
    this.#o = o;
    this.store = new ScheduleStore(o.redis, o.prefix);
    this.#queue = new Queue(SCHEDULE_QUEUE, { connection: o.redis, prefix: o.prefix });
    this.#queue.on('error', () => undefined);
  }

  /** The timer queue (for Bull Board). */
  get queue(): Queue {
    return this.#queue;
  }

  /** Validates and writes a new schedule (409 if its id is taken). */
  async create(raw: unknown): Promise<ScheduleView> {
    const req = this.#validate(scheduleRequestSchema, raw, 'schedule');
    const id = req.id ?? `s-${randomBytes(6).toString('base64url').replace(/_/g, '-')}`;
    if (await this.store.get(id)) throw exists(id);
    const spec = scheduleSpec(id, req, Date.now());
    if (!spec.paused) await this.#arm(spec);
    if (!(await this.store.create(spec))) {
      // Created by another request meanwhile: its timing, not ours, drives the scheduler.
      const winner = await this.store.get(id);
      if (winner && !winner.paused) await this.#arm(winner);
      throw exists(id);
    }
    return this.#view(spec);
  }

  async get(id: string): Promise<ScheduleView> {
    return this.#view(await this.#spec(id));
  }

  /** Schedules, oldest first, `limit` from `offset`. */
  async list(offset = 0, limit = 100): Promise<{ schedules: ScheduleView[]; total: number }> {
    const all = await this.store.list();
    const page = all.slice(offset, offset + limit);
    const fires = await this.store.lastFires(page.map((s) => s.id));
    return { schedules: await Promise.all(page.map((s) => this.#view(s, fires.get(s.id)))), total: all.length };
  }

  /** Changes a schedule (the result is checked as a whole); `{ paused: true }` pauses it, `{ paused: false }` resumes it. */
  async update(id: string, raw: unknown): Promise<ScheduleView> {
    const current = await this.#spec(id);
    const patch = this.#validate(schedulePatchSchema, raw, 'schedule change');
    const merged = mergeTiming(scheduleRequestOf(current), patch);
    const req = this.#validate(scheduleRequestSchema, merged, 'schedule');
    const spec = scheduleSpec(id, req, Date.now(), current.createdAt);
    if (spec.paused) {
      await this.store.put(spec);
      await this.#queue.removeJobScheduler(id);
    } else {
      await this.#arm(spec);
      await this.store.put(spec);
    }
    return this.#view(spec);
  }

  /** Deletes a schedule: a tick firing now either starts its task or nothing. */
  async remove(id: string): Promise<void> {
    if (!(await this.store.remove(id))) throw notFound(id);
    await this.#queue.removeJobScheduler(id);
  }

  /** Runs fires in this process, and gives every active schedule that has none a job scheduler. */
  async start(connection: RedisConnection): Promise<void> {
    this.#worker = new Worker(SCHEDULE_QUEUE, (job) => this.#fire(job), {
      connection,
      prefix: this.#o.prefix,
      concurrency: 20,
      lockDuration: this.#o.lockMs,
      stalledInterval: this.#o.stalledIntervalMs,
      // A fire whose process died is taken over, however often that happens: it is never failed for it.
      maxStalledCount: 1000,
    });
    this.#worker.on('error', (err) => this.#o.log.warn({ err: err.message }, 'schedule worker error'));
    await this.#rearm();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#worker?.close(), this.#queue.close()]);
  }

  async #spec(id: string): Promise<ScheduleSpec> {
    const spec = await this.store.get(id);
    if (!spec) throw notFound(id);
    return spec;
  }

  /** Adds or replaces the job scheduler of an active schedule (BullMQ computes its next tick). */
  async #arm(s: ScheduleSpec): Promise<void> {
    await this.#queue.upsertJobScheduler(
      s.id,
      {
        ...(s.cron !== undefined ? { pattern: s.cron, tz: s.timeZone } : { every: s.everyMs! }),
        ...(s.startAt !== undefined ? { startDate: s.startAt } : {}),
        ...(s.endAt !== undefined ? { endDate: s.endAt } : {}),
      },
      FIRE_TEMPLATE,
    );
  }

  /** Active schedules whose scheduler is missing (a crash between writes, a Redis restored from an older file) get one. */
  async #rearm(): Promise<void> {
    const [specs, schedulers] = await Promise.all([this.store.list(), this.#queue.getJobSchedulers(0, -1)]);
    const armed = new Set(schedulers.map((s) => s.key));
    for (const s of specs) if (!s.paused && !armed.has(s.id) && (s.endAt === undefined || s.endAt > Date.now())) await this.#arm(s);
  }

  /** One tick of one schedule: starts its task or run, or says why not. */
  async #fire(job: Job): Promise<FireRecord> {
    const id = job.repeatJobKey ?? '';
    const tick = job.opts.prevMillis ?? Number(job.id?.split(':').pop());
    const spec = id ? await this.store.get(id) : undefined;
    if (!spec || spec.paused) {
      // Deleted or paused after this tick was scheduled: nothing starts, and nothing more is scheduled.
      if (id) await this.#queue.removeJobScheduler(id);
      return { tick, at: Date.now(), outcome: 'skipped', reason: spec ? 'paused' : 'deleted' };
    }
    const late = Date.now() - tick;
    if (spec.misfire === 'skip' && late > MISFIRE_GRACE_MS) {
      return this.#record(id, { tick, at: Date.now(), outcome: 'skipped', reason: `missed: found ${Math.round(late / 1000)} s after its time (misfire: skip)` });
    }
    try {
      const started = await this.#start(spec, tick);
      return await this.#record(id, { tick, at: Date.now(), outcome: 'fired', id: started });
    } catch (err) {
      if (!isSwitchyardError(err) || !(err.code === 'VALIDATION_FAILED' || err.code === 'UNKNOWN_AGENT_TYPE')) throw err; // Redis, backlog: retried
      // What it fires no longer validates (its type was removed or changed): retrying cannot help.
      await this.#record(id, { tick, at: Date.now(), outcome: 'failed', reason: err.message });
      throw new UnrecoverableError(err.message);
    }
  }

  /** Starts the tick's task or run (or finds the one an earlier try of this fire started); returns its id. */
  async #start(s: ScheduleSpec, tick: number): Promise<string> {
    const idempotencyKey = `sched:${s.id}:${tick}`;
    if (s.task) {
      const { task } = await this.#o.producer.enqueue({ ...s.task, idempotencyKey }, fireTaskId(s.task.type, s.id, tick));
      return task.id;
    }
    const { run } = await this.#o.runs.start({ ...s.workflow, idempotencyKey }, fireRunId(s.id, tick));
    return run.id;
  }

  async #record(id: string, fire: FireRecord): Promise<FireRecord> {
    await this.store.recordFire(id, fire);
    if (fire.outcome !== 'fired') this.#o.log.warn({ schedule: id, tick: iso(fire.tick), reason: fire.reason }, `schedule tick ${fire.outcome}`);
    return fire;
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

  async #view(s: ScheduleSpec, last?: FireRecord): Promise<ScheduleView> {
    const fire = last ?? (await this.store.lastFires([s.id])).get(s.id);
    const now = Date.now();
    let next: number[] = [];
    if (!s.paused) {
      const first = s.everyMs !== undefined ? (await this.#queue.getJobScheduler(s.id))?.next : undefined;
      next = nextFireTimes(s, now, NEXT_SHOWN, first ?? undefined);
    }
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

/** A patch laid over a schedule: a new cron replaces an interval and the other way round; a new task replaces a workflow. */
function mergeTiming(current: Omit<ScheduleRequest, 'id'>, patch: Partial<ScheduleRequest>): Omit<ScheduleRequest, 'id'> {
  const merged: Omit<ScheduleRequest, 'id'> = { ...current, ...patch };
  if (patch.cron !== undefined) delete merged.everyMs;
  if (patch.everyMs !== undefined) {
    delete merged.cron;
    delete merged.timeZone;
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
