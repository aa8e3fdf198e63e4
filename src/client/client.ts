/**
 * src/client/: a typed HTTP client for the Switchyard API (used by the CLI; exported from the
 * package). Errors come back as ApiError with the problem+json fields, so callers can show the
 * server's own explanation.
 */
import { eventStream, type EventConnector, type EventFilter, type EventStreamOptions, type StreamedEvent } from './event-stream.ts';
import type { z } from 'zod';
import type { AgentTypeDescription } from '../model/catalogue.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { TaskRequest } from '../model/task-request.ts';
import type { TaskSummary, TaskView } from '../task/view.ts';
import type { AgentView } from '../model/agent-record.ts';
import type { PoolOverview } from '../routing/pool-overview.ts';
import type { BreakerView } from '../model/breaker-state.ts';
import type { NodeView, RunOverview, RunSummary, RunView } from '../workflow/view.ts';
import type { SchedulePatch as SchedulePatchBody, ScheduleRequest as ScheduleRequestBody } from '../model/schedule.ts';
import type { ScheduleView } from '../schedule/schedules.ts';
import { isFinal } from '../model/workflow-states.ts';

export interface ClientOptions<Ts extends readonly AgentType[] = readonly AgentType[]> {
  /** Base URL of the API, e.g. http://127.0.0.1:3000 */
  url: string;
  apiKey?: string;
  /**
   * The agent types (e.g. the default export of queues/index.ts): only for typing, so `enqueue`
   * checks each payload against its type and `wait` returns its result type.
   */
  types?: Ts;
  /**
   * How many times a request is sent again when the API answers 503 (Redis unreachable for a moment)
   * or cannot be reached: reads always, writes only when they carry an `idempotencyKey` (so a retry
   * finds what the first try may have written instead of writing it twice). Waits 200 ms, then 400,
   * 800, ... (with jitter) between tries. Default 3; 0 turns it off.
   */
  retries?: number;
}

/** A name of one of the declared types, and what its tasks take and give back. */
type NameOf<Ts extends readonly AgentType[]> = Ts[number]['name'];
type TypeNamed<Ts extends readonly AgentType[], N> = Extract<Ts[number], { name: N }>;
export type PayloadFor<Ts extends readonly AgentType[], N> = z.input<TypeNamed<Ts, N>['payload']>;
export type ResultFor<Ts extends readonly AgentType[], N> = z.output<TypeNamed<Ts, N>['result']>;

/** A task as enqueue answers it, carrying its type name so `wait` knows its result type. */
export type TaskHandle<N extends string = string> = TaskSummary & { type: N; duplicate?: boolean };
/** A task as read back, with its result typed when its type is known. */
export type TypedTaskView<R = unknown> = Omit<TaskView, 'result'> & { result?: R };
/** Everything a task request may say besides its type and payload. */
/** What a signal's sender gets back. */
export interface SignalReceipt {
  run: string;
  node: string;
  signal: string;
  state: 'delivered' | 'kept';
}

export type TaskOptions = Omit<TaskRequest, 'type' | 'payload'>;
/** A scheduled task: typed like `enqueue`'s when the types are declared; no idempotencyKey or delayMs (each fire gets its own). */
type ScheduledTask<Ts extends readonly AgentType[]> = {
  [N in NameOf<Ts>]: { type: N; payload: PayloadFor<Ts, N> } & Omit<NonNullable<ScheduleRequestBody['task']>, 'type' | 'payload'>;
}[NameOf<Ts>];
/**
 * A new schedule (POST /v1/schedules): one of `cron` (with `timeZone`, default UTC) and `everyMs`,
 * one of `task` and `workflow`, and optionally an `id`, a `name`, `startAt`/`endAt`, `misfire`, `paused`.
 */
export type ScheduleRequest<Ts extends readonly AgentType[] = readonly AgentType[]> = Omit<ScheduleRequestBody, 'task'> & { task?: ScheduledTask<Ts> };
/** A change to a schedule (PATCH): any field but the id; a new cron replaces an interval, a new task a workflow. */
export type SchedulePatch<Ts extends readonly AgentType[] = readonly AgentType[]> = Omit<SchedulePatchBody, 'task'> & { task?: ScheduledTask<Ts> };
/** One page of GET /v1/schedules: schedules oldest first, and how many there are in all. */
export interface SchedulePage {
  schedules: ScheduleView[];
  total: number;
}
export type { ScheduleView };
/** States after which a task changes no more (a `retrying` task is waiting for its retry). */
export const FINAL_TASK_STATES = ['completed', 'dead', 'cancelled'] as const;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: ReadonlyArray<{ path: string; message: string }> = [],
  ) {
    super(`${status} ${title}: ${detail}`);
    this.name = 'ApiError';
  }
}

export interface WaitOptions<V = RunView> {
  timeoutMs?: number;
  intervalMs?: number;
  /** Called with each view read while waiting (progress). */
  onProgress?: (view: V) => void;
}

export class WaitTimeoutError extends Error {
  constructor(readonly last: { state: string } | undefined, timeoutMs: number) {
    super(`gave up waiting after ${timeoutMs} ms${last ? `; it is ${last.state}` : ''}`);
    this.name = 'WaitTimeoutError';
  }
}

export interface SwitchyardClient<Ts extends readonly AgentType[] = readonly AgentType[]> {
  /** Enqueues one task of a declared type; 202 or, for a repeated idempotencyKey, the existing task. */
  enqueue<N extends NameOf<Ts>>(type: N, payload: PayloadFor<Ts, N>, options?: TaskOptions): Promise<TaskHandle<N>>;
  /** Enqueues many tasks at once, validated all or nothing. */
  enqueueBatch(tasks: ReadonlyArray<{ [N in NameOf<Ts>]: { type: N; payload: PayloadFor<Ts, N> } & TaskOptions }[NameOf<Ts>]>): Promise<TaskHandle<NameOf<Ts>>[]>;
  get<N extends NameOf<Ts>>(task: TaskHandle<N> | string): Promise<TypedTaskView<ResultFor<Ts, N>>>;
  /**
   * Waits until the task is completed, dead or cancelled (or the timeout passes: WaitTimeoutError):
   * woken by its events (GET /v1/events), reading its state after each; polls every `intervalMs`
   * where the API has no event log.
   */
  wait<N extends NameOf<Ts>>(task: TaskHandle<N> | string, opts?: WaitOptions<TypedTaskView<ResultFor<Ts, N>>>): Promise<TypedTaskView<ResultFor<Ts, N>>>;
  /** Cancels a task: removed if it has not started, aborted if it runs. */
  cancel(task: TaskHandle | string): Promise<TaskView>;
  /** Live agents; filters as GET /v1/agents takes them (type, pool, health, tag, capability). */
  agents(filter?: Record<string, string>): Promise<AgentView[]>;
  pools(type?: string): Promise<PoolOverview[]>;
  breakers(): Promise<BreakerView[]>;
  /** The agent types the API serves, with the JSON Schemas of their payloads and results. */
  agentTypes(): Promise<AgentTypeDescription[]>;
  /** Dead tasks, newest first; filters as GET /v1/dlq takes them. */
  deadLetters(filter?: Record<string, string>): Promise<TaskView[]>;
  /** Routes a dead task again with fresh attempts. */
  replay(task: TaskHandle | string): Promise<TaskView>;
  /** Replays every dead task matching the filter. */
  replayAll(filter?: Record<string, string | number>): Promise<{ replayed: number; tasks: TaskView[] }>;

  runWorkflow(workflow: unknown): Promise<RunSummary & { duplicate?: boolean }>;
  /** The newest runs, newest first, with node counts by state and no nodes. */
  workflows(limit?: number): Promise<RunOverview[]>;
  /** A run with one page of its nodes (the API's default page without `page`); `nodePage.next` is the next page's offset. */
  getWorkflow(id: string, page?: { nodeOffset?: number; nodeLimit?: number }): Promise<RunView>;
  /** Every node of a run, in request order, a page at a time. */
  workflowNodes(id: string, pageSize?: number): AsyncGenerator<NodeView>;
  cancelWorkflow(id: string): Promise<RunView>;
  /** Sends `payload` to the run's signal node `name`: `delivered` (it was waiting) or `kept` (not reached yet); 409 once it had one. */
  signal(runId: string, name: string, payload: object): Promise<SignalReceipt>;
  /**
   * Waits until the run reaches a final state, woken by its events (or polling where the API has no
   * event log), reading no nodes (`onProgress` gets views with an empty `nodes`: use `nodeCounts`;
   * at most one read per `intervalMs` while nodes settle); answers the final view with the first page of nodes.
   */
  waitWorkflow(id: string, opts?: WaitOptions): Promise<RunView>;
  /**
   * Task, node and run events as they happen (GET /v1/events), filtered; after a dropped connection it
   * reconnects and resumes after the last event it yielded (each once, within the API's retention).
   * Stop with `opts.signal` or by leaving the loop.
   */
  events(filter?: EventFilter, opts?: EventStreamOptions): AsyncGenerator<StreamedEvent>;

  /** Creates a schedule (its view: next fire times included); 400 names the field, 409 if its id is taken. */
  createSchedule(request: ScheduleRequest<Ts>): Promise<ScheduleView>;
  /** A schedule: its definition, next fire times and last fire. */
  schedule(id: string): Promise<ScheduleView>;
  /** One page of schedules, oldest first (the API's default page: the first 100). */
  schedules(page?: { offset?: number; limit?: number }): Promise<SchedulePage>;
  /** Every schedule, oldest first, a page at a time. */
  allSchedules(pageSize?: number): AsyncGenerator<ScheduleView>;
  /** Changes a schedule; the result is checked as a whole. */
  updateSchedule(id: string, patch: SchedulePatch<Ts>): Promise<ScheduleView>;
  /** Pauses a schedule: nothing fires until it is resumed (a fire already under way may still start). */
  pauseSchedule(id: string): Promise<ScheduleView>;
  resumeSchedule(id: string): Promise<ScheduleView>;
  deleteSchedule(id: string): Promise<void>;
}

/** Without events, how often a wait reads the state anyway (an event lost to a Redis error, a proxy that buffers). */
const SAFETY_READ_MS = 5000;

/** What a wait has heard from its event stream since its last read, and how to wake it. */
interface Waker {
  /** Nothing, events to read soon, or one to read now. */
  woken: 'no' | 'soon' | 'now';
  wake: (() => void) | undefined;
  /** The stream could not be had: poll. */
  polling: boolean;
}

/** Listens to `events` in the background for a wait; resolves `open` once the server listens (or it never will). */
function listen(events: (o: EventStreamOptions) => AsyncGenerator<StreamedEvent>, urgent: (e: StreamedEvent) => boolean) {
  const stop = new AbortController();
  const w: Waker = { woken: 'no', wake: undefined, polling: false };
  let isOpen = false;
  let opened: () => void = () => undefined;
  const open = new Promise<void>((r) => (opened = r));
  const pump = (async () => {
    try {
      for await (const e of events({ signal: stop.signal, onOpen: () => ((isOpen = true), opened()) })) {
        w.woken = urgent(e) || w.woken === 'now' ? 'now' : 'soon';
        if (w.woken === 'now') w.wake?.();
      }
    } catch {
      w.polling = true; // refused (no event log): poll
    } finally {
      opened();
    }
  })();
  return {
    w,
    /** Waits until the stream is open, at most 2 s; without it by then, the wait polls (and still takes its events if it opens). */
    ready: async () => {
      await Promise.race([open, new Promise((r) => setTimeout(r, 2000))]);
      if (!isOpen) w.polling = true;
    },
    close: async () => {
      stop.abort();
      await pump;
    },
  };
}

/** Sleeps until `w` is woken (an urgent event, or others once `minGapMs` passed since `lastRead`) or `napMs` pass. */
function nap(w: Waker, napMs: number, lastRead: number, minGapMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      clearInterval(tick);
      w.wake = undefined;
      resolve();
    };
    const timer = setTimeout(finish, napMs);
    // events that are not urgent: read at most every minGapMs
    const tick = setInterval(() => w.woken !== 'no' && Date.now() - lastRead >= minGapMs && finish(), Math.max(10, Math.min(minGapMs, 100)));
    w.wake = finish;
    if (w.woken === 'now' || (w.woken === 'soon' && Date.now() - lastRead >= minGapMs)) finish();
  });
}

/**
 * Reads until `done` says so or the timeout passes. Woken by `events` (opened first, so nothing that
 * happens after the first read is missed); an `urgent` event is read at once, others at most every
 * `minGapMs`. Where the stream cannot be had (no event log: 404; an older API), it polls every `intervalMs`.
 */
async function waitUntil<V extends { state: string }>(
  read: () => Promise<V>,
  done: (v: V) => boolean,
  w: WaitOptions<V>,
  events: (o: EventStreamOptions) => AsyncGenerator<StreamedEvent>,
  urgent: (e: StreamedEvent) => boolean,
  minGapMs: number,
): Promise<V> {
  const deadline = Date.now() + (w.timeoutMs ?? Infinity);
  const stream = listen(events, urgent);
  try {
    await stream.ready();
    for (;;) {
      stream.w.woken = 'no';
      const lastRead = Date.now();
      const last = await read();
      w.onProgress?.(last);
      if (done(last)) return last;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(last, w.timeoutMs ?? 0);
      await nap(stream.w, Math.min(left, stream.w.polling ? (w.intervalMs ?? 250) : SAFETY_READ_MS), lastRead, minGapMs);
    }
  } finally {
    await stream.close();
  }
}

const query = (q: Record<string, string>) => {
  const s = new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined && v !== '')).toString();
  return s ? `?${s}` : '';
};

/** `?offset=&limit=` (or `nodeOffset=...`) from the fields of a page that are set. */
const pageQuery = (page: Record<string, number | undefined>) => query(Object.fromEntries(Object.entries(page).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]]))));

const idOf = (task: { id: string } | string) => encodeURIComponent(typeof task === 'string' ? task : task.id);

/** One HTTP call to the API: the parsed JSON answer, or an ApiError with the problem's fields. */
type Call = <T>(method: string, path: string, body?: unknown) => Promise<T>;

function caller(url: string, apiKey: string | undefined, retries: number): Call {
  const base = url.replace(/\/+$/, '');
  const once = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (err) {
      throw new ApiError(0, 'Unreachable', `could not reach the Switchyard API at ${base} (${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}); is it running? set --url or SWITCHYARD_URL`);
    }
    if (!res.ok) throw await apiError(res);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const mayRetry = method === 'GET' || isKeyed(body);
    for (let attempt = 0; ; attempt++) {
      try {
        return await once<T>(method, path, body);
      } catch (err) {
        if (!mayRetry || attempt >= retries || !(err instanceof ApiError) || (err.status !== 503 && err.status !== 0)) throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt * (0.75 + Math.random() / 2)));
      }
    }
  };
}

/** A write the API answers once however often it is sent: it carries an idempotencyKey. */
const isKeyed = (body: unknown): boolean => typeof body === 'object' && body !== null && typeof (body as { idempotencyKey?: unknown }).idempotencyKey === 'string';

/** The ApiError of a refused answer (its problem+json fields). */
async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text();
  let p: { title?: string; detail?: string; errors?: Array<{ path: string; message: string }> } = {};
  try {
    p = JSON.parse(text) as typeof p;
  } catch {
    // not JSON: the text is the detail
  }
  return new ApiError(res.status, p.title ?? res.statusText, p.detail ?? text, p.errors ?? []);
}

/** Opens GET /v1/events with `filter` (for eventStream). */
function eventConnector(url: string, apiKey: string | undefined, filter: EventFilter): EventConnector {
  const path = `${url.replace(/\/+$/, '')}/v1/events${query({ ...filter } as Record<string, string>)}`;
  return async (lastEventId, signal) => {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    if (lastEventId) headers['last-event-id'] = lastEventId;
    const res = await fetch(path, { headers, signal });
    if (!res.ok) throw await apiError(res);
    return res;
  };
}

type ScheduleCalls<Ts extends readonly AgentType[]> = Pick<
  SwitchyardClient<Ts>,
  'createSchedule' | 'schedule' | 'schedules' | 'allSchedules' | 'updateSchedule' | 'pauseSchedule' | 'resumeSchedule' | 'deleteSchedule'
>;

function scheduleCalls<Ts extends readonly AgentType[]>(call: Call): ScheduleCalls<Ts> {
  const path = (id: string) => `/v1/schedules/${encodeURIComponent(id)}`;
  const calls: ScheduleCalls<Ts> = {
    createSchedule: (request) => call('POST', '/v1/schedules', request),
    schedule: (id) => call('GET', path(id)),
    schedules: (page = {}) => call('GET', `/v1/schedules${pageQuery(page)}`),
    // Offset pages, oldest first: a schedule created meanwhile comes last (and is listed); one deleted
    // meanwhile moves the later ones back by one, so one of them may be missed.
    async *allSchedules(pageSize = 100) {
      for (let offset = 0; ; offset += pageSize) {
        const page = await calls.schedules({ offset, limit: pageSize });
        yield* page.schedules;
        if (page.schedules.length < pageSize) return;
      }
    },
    updateSchedule: (id, patch) => call('PATCH', path(id), patch),
    pauseSchedule: (id) => call('PATCH', path(id), { paused: true }),
    resumeSchedule: (id) => call('PATCH', path(id), { paused: false }),
    deleteSchedule: (id) => call<void>('DELETE', path(id)),
  };
  return calls;
}

export function createClient<const Ts extends readonly AgentType[] = readonly AgentType[]>(o: ClientOptions<Ts>): SwitchyardClient<Ts> {
  const call = caller(o.url, o.apiKey, o.retries ?? 3);
  const final: readonly string[] = FINAL_TASK_STATES;
  const client: SwitchyardClient<Ts> = {
    enqueue: (type, payload, options = {}) => call('POST', '/v1/tasks', { ...options, type, payload }),
    enqueueBatch: async (tasks) => (await call<{ tasks: TaskHandle<NameOf<Ts>>[] }>('POST', '/v1/tasks/batch', { tasks })).tasks,
    get: (task) => call('GET', `/v1/tasks/${idOf(task)}`),
    wait: (task, w = {}) => {
      const id = typeof task === 'string' ? task : task.id;
      // A progress event is read at most every 250 ms (onProgress sees it); any other is read at once.
      const urgent = (e: StreamedEvent) => !('event' in e) || e.event.kind !== 'task' || e.event.state !== 'progress';
      return waitUntil(() => client.get(task), (v) => final.includes(v.state), w, (e) => client.events({ task: id }, e), urgent, 250);
    },
    cancel: (task) => call('DELETE', `/v1/tasks/${idOf(task)}`),
    agents: (filter = {}) => call('GET', `/v1/agents${query(filter)}`),
    pools: (type) => call('GET', `/v1/pools${query(type ? { type } : {})}`),
    breakers: () => call('GET', '/v1/breakers'),
    agentTypes: () => call('GET', '/v1/agent-types'),
    deadLetters: async (filter = {}) => (await call<{ tasks: TaskView[] }>('GET', `/v1/dlq${query(filter)}`)).tasks,
    replay: (task) => call('POST', `/v1/dlq/${idOf(task)}/replay`),
    replayAll: (filter = {}) => call('POST', '/v1/dlq/replay', filter),
    runWorkflow: (workflow) => call('POST', '/v1/workflows', workflow),
    workflows: async (limit) => (await call<{ runs: RunOverview[] }>('GET', `/v1/workflows${query(limit === undefined ? {} : { limit: String(limit) })}`)).runs,
    getWorkflow: (id, page = {}) => call('GET', `/v1/workflows/${encodeURIComponent(id)}${pageQuery(page)}`),
    async *workflowNodes(id, pageSize) {
      for (let offset: number | undefined = 0; offset !== undefined; ) {
        const view: RunView = await client.getWorkflow(id, { nodeOffset: offset, ...(pageSize ? { nodeLimit: pageSize } : {}) });
        yield* view.nodes;
        offset = view.nodePage.next;
      }
    },
    cancelWorkflow: (id) => call('DELETE', `/v1/workflows/${encodeURIComponent(id)}`),
    signal: (runId, name, payload) => call('POST', `/v1/workflows/${encodeURIComponent(runId)}/signals/${encodeURIComponent(name)}`, payload),
    waitWorkflow: async (id, w = {}) => {
      await waitUntil(() => client.getWorkflow(id, { nodeLimit: 0 }), (v) => isFinal(v.state), w, (e) => client.events({ run: id }, e), (e) => 'event' in e && e.event.kind === 'run', w.intervalMs ?? 250);
      return client.getWorkflow(id);
    },
    events: (filter = {}, opts = {}) => eventStream(eventConnector(o.url, o.apiKey, filter), opts),
    ...scheduleCalls<Ts>(call),
  };
  return client;
}
