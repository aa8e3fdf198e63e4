/**
 * Which generated inputs the API must accept, decided from the request schemas in src/ plus the rules
 * the documentation states beside them (a task's type must be declared and its payload fit the type;
 * a node takes what a task takes; a map node goes over one of its dependencies' results as a declared
 * type with a task's options; a workflow is a DAG of unique ids; a schedule fires what would be
 * valid sent by hand, and a patch is judged by the schedule it makes; a signal's payload is an object
 * or an array its node's schema accepts; a worker registers as a declared type). Written apart from the server's
 * own checks on purpose: where they disagree, one of them has a bug.
 */
import { parse as parseQuery } from 'node:querystring';
import { CronExpressionParser } from 'cron-parser';
import type { Catalogue } from '../../src/model/catalogue.ts';
import { agentQuerySchema, poolQuerySchema } from '../../src/api/routes/agents.ts';
import { recentRunsQuerySchema, runViewQuerySchema } from '../../src/api/routes/workflows.ts';
import { scheduleListQuerySchema } from '../../src/api/routes/schedules.ts';
import { eventsQuerySchema } from '../../src/api/routes/events.ts';
import { schedulePatchSchema, scheduleRequestSchema } from '../../src/model/schedule.ts';
import { parseCapability } from '../../src/registry/registry.ts';
import { backoffSchema } from '../../src/model/backoff.ts';
import { deadLetterFilterSchema, deadLetterQuerySchema } from '../../src/task/dead-letters.ts';
import { batchRequestSchema, MAX_PAYLOAD_DEPTH, nestsDeeperThan, optionsConflict, taskRequestSchema } from '../../src/model/task-request.ts';
import { payloadCheck, payloadIssues, signalNodeSchema } from '../../src/model/signal-node.ts';
import { MAX_SLEEP_MS, sleepNodeSchema } from '../../src/model/sleep-node.ts';
import { mapNodeSchema } from '../../src/model/map-node.ts';
import { nodeSchema, workflowRequestSchema } from '../../src/model/workflow-definition.ts';
import { extendRequestSchema, leaseRequestSchema, resultsRequestSchema, workerHeartbeatSchema, workerRegistrationSchema } from '../../src/model/worker-protocol.ts';

export interface Limits {
  maxBatch: number;
  maxWorkflowNodes: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A task request: its shape, a declared type, a payload that type accepts, and a backoff that resolves. */
export function taskIsValid(catalogue: Catalogue, raw: unknown): boolean {
  const req = taskRequestSchema.safeParse(raw);
  if (!req.success || optionsConflict(req.data)) return false;
  const type = catalogue.find(req.data.type);
  if (!type || !type.payload.safeParse(req.data.payload).success) return false;
  return !req.data.backoff || backoffSchema.safeParse({ ...type.defaults.backoff, ...req.data.backoff }).success;
}

export function batchIsValid(catalogue: Catalogue, limits: Limits, raw: unknown): boolean {
  const batch = batchRequestSchema.safeParse(raw);
  if (!batch.success || batch.data.tasks.length > limits.maxBatch) return false;
  const keys = new Set<string>();
  for (const task of batch.data.tasks) {
    if (!taskIsValid(catalogue, task)) return false;
    const { type, idempotencyKey } = task as { type: string; idempotencyKey?: string };
    if (idempotencyKey === undefined) continue;
    if (keys.has(`${type}\0${idempotencyKey}`)) return false;
    keys.add(`${type}\0${idempotencyKey}`);
  }
  return true;
}

export function workflowIsValid(catalogue: Catalogue, limits: Limits, raw: unknown): boolean {
  const top = workflowRequestSchema.safeParse(raw);
  if (!top.success || top.data.nodes.length > limits.maxWorkflowNodes) return false;
  const deps = new Map<string, string[]>();
  const signals = new Set<string>();
  const conditions: Array<{ when: { node?: string }; dependsOn: string[] }> = [];
  for (const rawNode of top.data.nodes) {
    const kind = isObject(rawNode) && typeof rawNode.kind === 'string' ? rawNode.kind : 'task';
    if (kind === 'sleep' || kind === 'signal') {
      // A sleep takes durationMs or until (a year ahead at most); a signal a name unique in the run and a schema zod can read.
      const waiting = waitingNodeIsValid(kind, rawNode, signals);
      if (!waiting || deps.has(waiting.id)) return false;
      deps.set(waiting.id, waiting.dependsOn);
      if (waiting.when) conditions.push({ when: waiting.when, dependsOn: waiting.dependsOn });
      continue;
    }
    if (kind === 'map') {
      const map = mapNodeIsValid(catalogue, rawNode);
      if (!map || deps.has(map.id)) return false;
      deps.set(map.id, map.dependsOn);
      if (map.when) conditions.push({ when: map.when, dependsOn: map.dependsOn });
      continue;
    }
    if (kind !== 'task') return false;
    const parsed = nodeSchema.safeParse(rawNode);
    if (!parsed.success) return false;
    const { id, dependsOn, compensate, kind: _kind, when, ...task } = parsed.data;
    if (deps.has(id) || !taskIsValid(catalogue, task)) return false;
    deps.set(id, dependsOn);
    if (when) conditions.push({ when, dependsOn });
    if (compensate) {
      const payload = catalogue.get(task.type).payload.parse(task.payload);
      const undo = catalogue.find(compensate.type ?? task.type);
      if (!undo || !undo.payload.safeParse(compensate.payload === undefined ? payload : compensate.payload).success) return false;
    }
  }
  for (const [id, list] of deps) {
    if (new Set(list).size !== list.length || list.some((d) => d === id || !deps.has(d))) return false;
  }
  // A condition reads one of its node's dependencies: the one it names, or the only one.
  if (conditions.some(({ when, dependsOn }) => (when.node === undefined ? dependsOn.length !== 1 : !dependsOn.includes(when.node)))) return false;
  // Acyclic: repeatedly take the nodes whose dependencies are all taken.
  const taken = new Set<string>();
  for (let progress = true; progress; ) {
    progress = false;
    for (const [id, list] of deps) {
      if (!taken.has(id) && list.every((d) => taken.has(d))) {
        taken.add(id);
        progress = true;
      }
    }
  }
  return taken.size === deps.size;
}

/** A sleep or signal node as the README describes it; its id, dependencies and condition, or undefined if invalid. */
function waitingNodeIsValid(kind: 'sleep' | 'signal', raw: unknown, signals: Set<string>): { id: string; dependsOn: string[]; when?: { node?: string } } | undefined {
  if (kind === 'sleep') {
    const p = sleepNodeSchema.safeParse(raw);
    if (!p.success || (p.data.durationMs === undefined) === (p.data.until === undefined)) return undefined;
    if (p.data.until !== undefined && Date.parse(p.data.until) - Date.now() > MAX_SLEEP_MS) return undefined;
    return p.data;
  }
  const p = signalNodeSchema.safeParse(raw);
  if (!p.success || signals.has(p.data.name) || typeof payloadCheck(p.data.schema) === 'string') return undefined;
  signals.add(p.data.name);
  return p.data;
}

/**
 * A map node as the README describes it: its shape (`over` `<node>.<path>` or `<node>`, a `type`,
 * `payloadFrom` `item` or `item.<path>`, `concurrency` 1-1000, `tolerateFailures` 0-10 000, a task's
 * per-task options, no fields beyond those), the `<node>` of `over` one of its dependencies, its type
 * declared, and a backoff that resolves against the type's (the options apply to each item as to a
 * task). Its id, dependencies and condition, or undefined if invalid. The items are only checked when
 * the map starts, so nothing here reads a payload.
 */
export function mapNodeIsValid(catalogue: Catalogue, raw: unknown): { id: string; dependsOn: string[]; when?: { node?: string } } | undefined {
  const p = mapNodeSchema.safeParse(raw);
  if (!p.success) return undefined;
  const source = p.data.over.split('.')[0]!;
  if (!p.data.dependsOn.includes(source)) return undefined;
  const type = catalogue.find(p.data.type);
  if (!type) return undefined;
  if (p.data.backoff && !backoffSchema.safeParse({ ...type.defaults.backoff, ...p.data.backoff }).success) return undefined;
  return p.data;
}

/**
 * POST /v1/workflows/:id/signals/:name, the body: a JSON object or an array (README, and the
 * operation's body schema), nested no deeper than any payload the API takes (MAX_PAYLOAD_DEPTH: deeper
 * JSON overflows the stack where it is serialised), that the node's JSON Schema accepts as zod reads it.
 */
export function signalPayloadIsValid(schema: Record<string, unknown> | undefined, raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null || nestsDeeperThan(raw, MAX_PAYLOAD_DEPTH)) return false;
  return payloadIssues(schema, raw).length === 0;
}

/** POST /v1/dlq/replay: no body, `null` and `{}` all mean "every dead task". */
export function replayFilterIsValid(raw: unknown): boolean {
  return raw === null || (isObject(raw) && deadLetterFilterSchema.safeParse(raw).success);
}

/** What POST /v1/workers names a worker: `<type>.<pool>.http-<12 hex>`. Another id is no worker's (404), whatever it looks like. */
export const WORKER_ID = /^([a-z][a-z0-9-]{0,62})\.([a-z0-9][a-z0-9-]{0,62})\.http-[0-9a-f]{12}$/;

/** A worker registration (POST /v1/workers): its shape, and a declared type. */
export function workerRegistrationIsValid(catalogue: Catalogue, raw: unknown): boolean {
  const r = workerRegistrationSchema.safeParse(raw);
  return r.success && catalogue.find(r.data.type) !== undefined;
}

/**
 * The body of a worker's heartbeat, lease, extend or results request: its shape alone (leases it does
 * not hold are answered, not refused). A lease request's body is optional: `null` is none, defaults.
 */
export function workerBodyIsValid(path: string, raw: unknown): boolean {
  switch (path) {
    case '/v1/workers/:id/heartbeat':
      return workerHeartbeatSchema.safeParse(raw).success;
    case '/v1/workers/:id/leases':
      return raw === null || leaseRequestSchema.safeParse(raw).success;
    case '/v1/workers/:id/leases/extend':
      return extendRequestSchema.safeParse(raw).success;
    case '/v1/workers/:id/results':
      return resultsRequestSchema.safeParse(raw).success;
    default:
      throw new Error(`no worker body for ${path}`);
  }
}

/** A query string as Express 5 reads it (node:querystring, its "simple" parser), against the route's schema. */
export function queryIsValid(path: string, query: string): boolean {
  const parsed: unknown = parseQuery(query);
  switch (path) {
    case '/v1/dlq':
      return deadLetterQuerySchema.safeParse(parsed).success;
    case '/v1/pools':
      return poolQuerySchema.safeParse(parsed).success;
    case '/v1/workflows':
      return recentRunsQuerySchema.safeParse(parsed).success;
    case '/v1/workflows/:id':
      return runViewQuerySchema.safeParse(parsed).success;
    case '/v1/schedules':
      return scheduleListQuerySchema.safeParse(parsed).success;
    case '/v1/events':
      return eventsQuerySchema.safeParse(parsed).success;
    case '/v1/agents': {
      const q = agentQuerySchema.safeParse(parsed);
      if (!q.success) return false;
      if (!q.data.capability) return true;
      try {
        parseCapability(q.data.capability);
        return true;
      } catch {
        return false;
      }
    }
    default:
      throw new Error(`oracle: no query schema for ${path}`);
  }
}

/**
 * GET /v1/events: the query, with the Last-Event-ID header standing for `lastEventId` when the query
 * has none (the query's wins: the route's documentation, a reconnecting EventSource sends the header);
 * undefined when the request is invalid.
 */
export function eventsQueryOf(query: string, lastEventIdHeader?: string): EventsFilter | undefined {
  const parsed = parseQuery(query);
  const withHeader = lastEventIdHeader !== undefined && parsed.lastEventId === undefined ? { ...parsed, lastEventId: lastEventIdHeader } : parsed;
  const q = eventsQuerySchema.safeParse(withHeader);
  return q.success ? q.data : undefined;
}

/** What GET /v1/events filters on, and where it resumes. */
export interface EventsFilter {
  type?: string;
  run?: string;
  task?: string;
  lastEventId?: string;
}

/**
 * An event id (SSE `id`, Last-Event-ID), as the route documents it: its stream entry `<ms>-<seq>`
 * and its place in the entry `.<index>`; an entry id alone stands for the whole entry (all its events).
 */
export const EVENT_ID = /^(\d{1,15})-(\d{1,15})(?:\.(\d{1,6}))?$/;

/**
 * Event ids compared as the log orders them: by entry (time, then sequence: numbers, so `007-0` is
 * `7-0`), then index, an entry alone after each of its events; undefined when one is no id.
 */
export function compareEventIds(a: string, b: string): number | undefined {
  const [x, y] = [EVENT_ID.exec(a), EVENT_ID.exec(b)];
  if (!x || !y) return undefined;
  const index = (m: RegExpExecArray) => (m[3] === undefined ? Infinity : Number(m[3]));
  return Math.sign(Number(x[1]) - Number(y[1]) || Number(x[2]) - Number(y[2]) || (index(x) === index(y) ? 0 : index(x) - index(y)));
}

/**
 * Whether an event (its data, as the contract's eventSchema reads it) passes the filters, as the
 * documentation states them: `type` only task events of that agent type, `task` only that task's
 * events, `run` only the run's own, its nodes' and its tasks' events (those that carry the run).
 */
export function eventPasses(e: Record<string, unknown>, f: EventsFilter): boolean {
  if (f.type !== undefined && (e.kind !== 'task' || e.type !== f.type)) return false;
  if (f.task !== undefined && (e.kind !== 'task' || e.task !== f.task)) return false;
  if (f.run !== undefined && e.run !== f.run) return false;
  return true;
}

/**
 * Whether a resumed stream starts with a `gap` event, as the README states it: when the resume id is
 * older than the retention window (`margin` either side of its edge: either is right), a gap comes
 * first; never after a younger id, a future one or none (the log trims nothing younger). `0-0`, the id
 * before every entry, reads the whole log: a gap may come or not. (This holds where the log has
 * entries younger than the id, as the fuzz's always has.)
 */
export function gapExpected(resume: string | undefined, retentionMs: number, now = Date.now(), margin = 5000): 'yes' | 'no' | 'either' {
  const m = resume === undefined ? null : EVENT_ID.exec(resume);
  if (m === null) return 'no';
  const ms = Number(m[1]);
  if (ms >= now - retentionMs + margin) return 'no';
  if (ms > now - retentionMs - margin || (ms === 0 && Number(m[2]) === 0)) return 'either';
  return 'yes';
}

/** The latest instant an ISO 8601 date-time (RFC 3339: four-digit years) can show. */
const LAST_ISO_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');

/** A schedule request as sent: the fields the oracle reads. */
type ScheduleFields = Record<string, unknown> & { cron?: unknown; timeZone?: unknown; everyMs?: unknown; startAt?: unknown; endAt?: unknown; paused?: unknown };

const instantOf = (v: unknown): number | undefined => (typeof v === 'string' ? Date.parse(v) : undefined);

/**
 * POST /v1/schedules: the request schema (its shape and the whole-schedule rules: one of cron and
 * everyMs, a time zone with a cron only, one of task and workflow, an end after the start), then what
 * it fires, checked as if sent by hand (a task as POST /v1/tasks takes it, a workflow as POST /v1/workflows).
 */
export function scheduleIsValid(catalogue: Catalogue, limits: Limits, raw: unknown): boolean {
  if (!scheduleRequestSchema.safeParse(raw).success) return false;
  const { task, workflow } = raw as ScheduleFields;
  return task !== undefined ? taskIsValid(catalogue, task) : workflowIsValid(catalogue, limits, workflow);
}

/**
 * A patch laid over a schedule, as the README states it: a new cron replaces an interval, a new
 * interval replaces a cron and its time zone, a new task replaces a workflow and the other way round;
 * every other field is replaced by the patch's. The result is then judged as a whole schedule.
 */
export function mergeSchedulePatch(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const base: Record<string, unknown> = { ...current };
  delete base.id;
  const has = (k: string) => Object.hasOwn(patch, k);
  if (has('cron')) delete base.everyMs;
  if (has('everyMs')) {
    delete base.cron;
    delete base.timeZone;
  }
  if (has('task')) delete base.workflow;
  if (has('workflow')) delete base.task;
  return { ...base, ...patch };
}

/** PATCH /v1/schedules/:id over the schedule `current` was created with: the patch schema, then the merged schedule. */
export function schedulePatchIsValid(catalogue: Catalogue, limits: Limits, current: Record<string, unknown>, raw: unknown): boolean {
  if (!isObject(raw) || !schedulePatchSchema.safeParse(raw).success) return false;
  return scheduleIsValid(catalogue, limits, mergeSchedulePatch(current, raw));
}

/**
 * The fire times a schedule shows at `now` (`nextFires`), as the README states them: none while
 * paused; otherwise its first five ticks after `now`, at or after startAt and not after endAt. A
 * cron's ticks are the expression's times in its time zone (UTC by default) as cron-parser reads
 * them (none once it finds no more: `0 0 31 2,4 *` never fires); an interval's are startAt + k * everyMs,
 * from the Unix epoch without a startAt.
 */
export function expectedFires(s: ScheduleFields, now: number, n = 5): number[] {
  const out: number[] = [];
  if (s.paused === true) return out;
  const startAt = instantOf(s.startAt);
  const endAt = Math.min(instantOf(s.endAt) ?? Infinity, LAST_ISO_INSTANT);
  const after = Math.max(now, (startAt ?? -Infinity) - 1);
  if (typeof s.cron === 'string') {
    try {
      const it = CronExpressionParser.parse(s.cron.trim(), { tz: typeof s.timeZone === 'string' ? s.timeZone : 'UTC', currentDate: new Date(after) });
      for (let t = it.next().getTime(); t <= endAt && out.length < n; t = it.next().getTime()) out.push(t);
    } catch {
      // No (more) time matches the expression.
    }
    return out;
  }
  if (typeof s.everyMs !== 'number') return out;
  const every = s.everyMs;
  const phase = startAt ?? 0;
  for (let t = phase + (Math.floor((after - phase) / every) + 1) * every; t <= endAt && out.length < n; t += every) out.push(t);
  return out;
}

/**
 * Valid schedules the API mishandles today: each line is a TODO for src/, and the fuzz neither
 * sends these as valid nor as invalid, so it stays green on the rest.
 * Delete a line once its bug is fixed: the fuzz then covers those requests too. (None today.)
 */
export function scheduleKnownBug(_s: ScheduleFields, _now = Date.now()): string | undefined {
  return undefined;
}

/** The same for a patch over the schedule `current` was created with. */
export function schedulePatchKnownBug(current: ScheduleFields, patch: Record<string, unknown>, now = Date.now()): string | undefined {
  if (!schedulePatchSchema.safeParse(patch).success) return undefined;
  return scheduleKnownBug(mergeSchedulePatch(current, patch), now);
}

/** The keys BullMQ (and lua/fair-tag.lua) keep beside a queue's jobs that are no job hash, and those beside each job. */
export const QUEUE_KEY_NAMES = ['id', 'events', 'wait', 'active', 'paused', 'delayed', 'prioritized', 'completed', 'failed', 'stalled', 'stalled-check', 'limiter', 'marker', 'pc', 'repeat', 'waiting-children', '_fair'] as const;
