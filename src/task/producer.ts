/**
 * Turns validated task requests into BullMQ jobs on pool queues. Everything is validated before
 * anything is written; a batch is all-or-nothing. An idempotency key reserves its task id with one
 * atomic SET NX GET, so a retried request finds the same task (and re-adds it, with the same job
 * id, if the first request died between the reservation and the add). The reservation also holds
 * the request's fingerprint: the same key with a different request is refused (idempotency.ts).
 */
import { SpanKind } from '@opentelemetry/api';
import { currentCarrier, inSpan, tracingOn } from '../config/tracing.ts';
import type { Job, JobsOptions } from 'bullmq';
import type { Catalogue } from '../model/catalogue.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { Config } from '../config/env.ts';
import { SwitchyardError, ValidationError, type FieldIssue } from '../model/errors.ts';
import { scripts } from '../redis/scripts.ts';
import { pipelineByKey, withRedis, type RedisConnection } from '../redis/connection.ts';
import { addJobs } from './job-batch.ts';
import { waitForReplicas } from '../redis/replication.ts';
import { keys as keyBuilder } from '../redis/keys.ts';
import { PARKED_POOL, parseQueueName, queueName } from '../model/names.ts';
import { compactDecision, type Router, type RoutingDecision } from '../model/routing.ts';
import { parseOrThrow, summarize } from '../model/validation.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { backoffSchema } from '../model/backoff.ts';
import { BACKOFF_TYPE } from './backoff-strategy.ts';
import { newTaskId } from '../model/task-id.ts';
import { IdempotencyKeyReusedError, readReservation, requestFingerprint, reservationValue } from './idempotency.ts';
import type { PoolQueues } from './pool-queues.ts';
import { checkCallback } from '../model/callback.ts';
import { optionsConflict, taskRequestSchema, type TaskRequest } from '../model/task-request.ts';
import { FlowControl, flowKeyOf, type FlowKey } from './flow-control.ts';
import { FairOrder } from './fair-order.ts';
import { summaryOf, taskState, type TaskSummary } from './view.ts';

export interface EnqueueResult {
  task: TaskSummary;
  /** false when an idempotency key, a throttle or a debounce matched an existing task and nothing new was enqueued. */
  created: boolean;
  /** How a throttle or debounce answered with an existing task. */
  flow?: 'throttled' | 'debounced';
}

export interface PreparedTask {
  id: string;
  type: AgentType;
  queue: string;
  /** The full decision, for the caller; the envelope stores it compacted. */
  routing: RoutingDecision;
  envelope: TaskEnvelope;
  opts: JobsOptions;
  key?: string;
  /** With a key: the fingerprint of the validated request, stored with the key's reservation. */
  fingerprint?: string;
  /** A throttle or debounce key and window. */
  flow?: FlowKey;
}

export interface ProducerDeps {
  redis: RedisConnection;
  queues: PoolQueues;
  catalogue: Catalogue;
  router: Router;
  config: Pick<Config, 'prefix' | 'idempotencyTtlS' | 'keepCompleted' | 'maxBatch' | 'maxBacklog'> & Partial<Pick<Config, 'waitReplicas' | 'callbacks'>>;
  /** Tasks of a type already waiting (from the fleet snapshot); enables the backlog limit. */
  backlog?: (type: string) => number;
  /** Told of the tasks written to each queue, once they are (the acknowledgement audit, metrics). */
  written?: (queue: string, ids: readonly string[]) => void;
}

/** The decision as the task carries it: compacted, and absent in the common case (see model/routing.ts). */
function storeDecision(envelope: TaskEnvelope, routing: RoutingDecision): void {
  const stored = compactDecision(routing);
  if (stored) envelope.routing = stored;
  else delete envelope.routing;
}

export class BacklogFullError extends SwitchyardError {
  constructor(type: string, waiting: number, limit: number) {
    super('BACKLOG_FULL', `${waiting} tasks of type ${type} are already waiting (limit ${limit}, SWITCHYARD_MAX_BACKLOG); nothing was enqueued, retry later`);
    this.name = 'BacklogFullError';
  }
}

export class TaskProducer {
  readonly #d: ProducerDeps;
  readonly #keys: ReturnType<typeof keyBuilder>;
  readonly #flow: FlowControl;
  readonly #fair: FairOrder;

  constructor(deps: ProducerDeps) {
    this.#d = deps;
    this.#keys = keyBuilder(deps.config.prefix);
    this.#flow = new FlowControl(deps.redis, deps.config.prefix, deps.queues, (queue, id) => this.#existing(queue, id));
    this.#fair = new FairOrder(deps.redis, deps.config.prefix);
  }

  /** Validates one raw request (404 for an unknown type, 400 for anything else wrong). */
  prepare(raw: unknown, base = '', id?: string): PreparedTask {
    // safeParse first: the labels parseOrThrow needs are built only for a request that fails.
    const parsed = taskRequestSchema.safeParse(raw);
    const req = parsed.success ? parsed.data : parseOrThrow(taskRequestSchema, raw, base || 'task request', base);
    const conflict = optionsConflict(req);
    if (conflict) {
      const path = base ? `${base}.${conflict.path}` : conflict.path;
      throw new ValidationError(`${base || 'task request'} is invalid: ${path}: ${conflict.message}`, [{ path, message: conflict.message }]);
    }
    if (req.callback) checkCallback(req.callback.url, this.#d.config.callbacks ?? { hosts: [] }, base ? `${base}.callback` : 'callback');
    const type = this.#d.catalogue.get(req.type);
    const checked = type.payload.safeParse(req.payload);
    const payload = checked.success ? checked.data : parseOrThrow(type.payload, req.payload, `payload of ${type.name}`, base ? `${base}.payload` : 'payload');
    const task = this.build(req, type, payload, id);
    // The request as validated (the payload as its type's schema read it), without the key itself.
    if (task.key) task.fingerprint = requestFingerprint({ ...req, idempotencyKey: undefined, payload });
    return task;
  }

  /** Routes a validated request and builds its job (envelope and options); writes nothing. */
  build(req: Omit<TaskRequest, 'type' | 'payload'>, type: AgentType, payload: unknown, id = newTaskId(type.name)): PreparedTask {
    const d = type.defaults;
    const backoff = req.backoff ? parseOrThrow(backoffSchema, { ...d.backoff, ...req.backoff }, 'backoff', 'backoff') : d.backoff;
    const routing = this.#d.router.route({ type: type.name, pool: req.pool, tags: req.tags, strategy: req.strategy, version: req.version });
    // Only what differs from the type's defaults travels with the task: agents know the defaults.
    const envelope: TaskEnvelope = { payload };
    storeDecision(envelope, routing);
    if (req.timeoutMs !== undefined) envelope.timeoutMs = req.timeoutMs;
    if (req.backoff) envelope.backoff = backoff;
    if (req.idempotencyKey) envelope.key = req.idempotencyKey;
    if (req.tags?.length) envelope.tags = req.tags;
    if (req.callback) envelope.callback = req.callback;
    if (req.pool || req.strategy || req.version) {
      envelope.route = { ...(req.pool ? { pool: req.pool } : {}), ...(req.strategy ? { strategy: req.strategy } : {}), ...(req.version ? { version: req.version } : {}) };
    }
    if (req.concurrencyKey !== undefined) {
      envelope.concurrency = { key: req.concurrencyKey, ...(req.concurrencyLimit !== undefined ? { limit: req.concurrencyLimit } : {}) };
    }
    // A keyed task's priority is its key's turn, given when it is written (fair-order.ts).
    const priority = req.concurrencyKey !== undefined ? 0 : (req.priority ?? d.priority);
    const opts: JobsOptions = {
      jobId: id,
      attempts: req.attempts ?? d.attempts,
      backoff: { type: BACKOFF_TYPE }, // computed per task by the agents' strategy (task/backoff-strategy.ts)
      removeOnComplete: this.#d.config.keepCompleted,
      // removeOnFail is left unset, which BullMQ reads as "keep" (our Workers set no removeOnFail):
      // dead tasks are kept until replayed or deleted, nothing vanishes, and no option travels per job.
      ...(priority > 0 ? { priority } : {}),
      ...(req.delayMs ? { delay: req.delayMs } : {}),
      // A debounced task waits out its window (each later request of the window pushes it back).
      ...(req.debounce ? { delay: req.debounce.windowMs } : {}),
    };
    const flow = flowKeyOf(req);
    return {
      id,
      type,
      queue: queueName({ type: type.name, pool: routing.pool }),
      routing,
      envelope,
      opts,
      ...(req.idempotencyKey ? { key: req.idempotencyKey } : {}),
      ...(flow ? { flow } : {}),
    };
  }

  /** Validates and writes one task; `id` names it (a schedule's fire), else it gets a new one. */
  async enqueue(raw: unknown, id?: string): Promise<EnqueueResult> {
    const task = this.prepare(raw, '', id);
    const [result] = await this.#write([task]);
    return result!;
  }

  /** Validates every task first (all issues reported at once), then writes them. */
  async enqueueBatch(raws: readonly unknown[]): Promise<EnqueueResult[]> {
    if (raws.length > this.#d.config.maxBatch) {
      throw new ValidationError(`a batch holds at most ${this.#d.config.maxBatch} tasks, got ${raws.length}`, [
        { path: 'tasks', message: `at most ${this.#d.config.maxBatch} tasks (SWITCHYARD_MAX_BATCH)` },
      ]);
    }
    const issues: FieldIssue[] = [];
    const tasks: PreparedTask[] = [];
    const seenKeys = new Map<string, number>();
    raws.forEach((raw, i) => {
      const base = `tasks[${i}]`;
      try {
        const t = this.prepare(raw, base);
        if (t.key) {
          const k = `${t.type.name}\0${t.key}`;
          const first = seenKeys.get(k);
          if (first !== undefined) issues.push({ path: `${base}.idempotencyKey`, message: `repeats tasks[${first}].idempotencyKey` });
          else seenKeys.set(k, i);
        }
        tasks.push(t);
      } catch (err) {
        if (err instanceof ValidationError) issues.push(...err.issues);
        else if (err instanceof SwitchyardError && err.code === 'UNKNOWN_AGENT_TYPE') issues.push({ path: `${base}.type`, message: err.message });
        else throw err;
      }
    });
    if (issues.length > 0) throw new ValidationError(`batch rejected, nothing was enqueued: ${summarize(issues)}`, issues);
    return this.#write(tasks, true);
  }

  #write(tasks: PreparedTask[], batch = false): Promise<EnqueueResult[]> {
    if (this.#d.backlog) {
      const adding = new Map<string, number>();
      for (const t of tasks) adding.set(t.type.name, (adding.get(t.type.name) ?? 0) + 1);
      for (const [type, n] of adding) {
        const waiting = this.#d.backlog(type);
        if (waiting + n > this.#d.config.maxBacklog) throw new BacklogFullError(type, waiting, this.#d.config.maxBacklog);
      }
    }
    const write = () => withRedis(this.#d.redis, () => this.#writeAll(tasks, batch));
    if (!tracingOn()) return write();
    // One span for the write; every task carries its context, so the agents' spans join this trace.
    const first = tasks[0]!;
    const attributes = { 'messaging.system': 'switchyard', 'messaging.operation.type': 'send', 'messaging.batch.message_count': tasks.length, 'switchyard.task.type': first.type.name, 'switchyard.pool': first.routing.pool, ...(tasks.length === 1 ? { 'switchyard.task.id': first.id } : {}) };
    return inSpan(`enqueue ${first.type.name}`, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
      const carrier = currentCarrier();
      if (carrier) for (const t of tasks) t.envelope.trace = carrier;
      span?.setAttribute('switchyard.routing.strategy', first.routing.strategy);
      return write();
    });
  }

  async #writeAll(tasks: PreparedTask[], batch: boolean): Promise<EnqueueResult[]> {
    const results: Array<EnqueueResult | undefined> = new Array(tasks.length);
    const flowed = await this.#throttleAndDebounce(tasks, results);
    const { toAdd, reserved } = await this.#reserveKeys(flowed.items, batch, results);
    const written = [...flowed.written, ...(await this.#addJobs(toAdd, results))];
    const done = results as EnqueueResult[];
    // Tasks found by their keys too (an earlier request may have written them and not seen a replica
    // confirm), and the keys' reservations: a reservation lost in a failover would let a retry add a twin.
    const wait = this.#d.config.waitReplicas;
    if (wait && wait.count > 0) {
      const jobs = done.map((r) => this.#keys.job(queueName(r.task), r.task.id));
      await waitForReplicas(this.#d.redis, [...jobs, ...reserved], wait);
    }
    for (const [queue, ids] of written) this.#d.written?.(queue, ids);
    return done;
  }

  /**
   * Reserves the idempotency keys of keyed tasks (one SET NX GET each, pipelined per slot). A key
   * already held by the same request answers with its task (into `results`), or is repaired: the
   * task is added under the reserved id and queue. Returns what to add, and the reserved keys.
   */
  async #reserveKeys(items: ReadonlyArray<{ index: number; task: PreparedTask }>, batch: boolean, results: Array<EnqueueResult | undefined>): Promise<{ toAdd: Array<{ index: number; task: PreparedTask }>; reserved: string[] }> {
    const toAdd: Array<{ index: number; task: PreparedTask }> = [];
    const keyed: Array<{ t: PreparedTask; index: number }> = [];
    // Tasks without a key are added as they are; keyed ones once their key is reserved (below).
    for (const { index, task } of items) {
      if (task.key !== undefined) keyed.push({ t: task, index });
      else toAdd.push({ index, task });
    }
    if (keyed.length === 0) return { toAdd, reserved: [] };
    const keyOf = ({ t }: (typeof keyed)[number]) => this.#keys.idempotency(t.type.name, t.key!);
    const valueOf = ({ t }: (typeof keyed)[number]) => reservationValue([t.queue, t.id], t.fingerprint ?? '');
    const replies = await pipelineByKey(this.#d.redis, keyed, keyOf, (pipe, k) =>
      pipe.call('SET', keyOf(k), valueOf(k), 'NX', 'GET', 'EX', String(this.#d.config.idempotencyTtlS)),
    );
    await this.#refuseReusedKeys(keyed, replies, batch, (k) => scripts.lockRelease.run(this.#d.redis, [keyOf(k)], [valueOf(k)]));
    for (const [j, { t, index }] of keyed.entries()) {
      const previous = replies[j];
      if (typeof previous === 'string') {
        const [queue, id] = readReservation(previous, 2).fields;
        const existing = await this.#existing(queue!, id!);
        if (existing) {
          results[index] = { task: existing, created: false };
          continue;
        }
        // Reserved by a request that died before adding: add it now under the reserved id and queue.
        t.id = id!;
        t.opts.jobId = id!;
        if (queue !== t.queue) {
          // This request may have routed elsewhere: the answer and the stored decision name the reserved pool.
          const pool = parseQueueName(queue!)?.pool ?? t.routing.pool;
          t.routing = { ...t.routing, pool, reason: `${pool}, chosen by an earlier request with the same idempotencyKey` };
          storeDecision(t.envelope, t.routing);
          t.queue = queue!;
        }
      }
      toAdd.push({ index, task: t });
    }
    return { toAdd, reserved: keyed.map(keyOf) };
  }

  /**
   * Throttled and debounced tasks, one at a time in request order, each added at once when its key's
   * window lets it (a later one of the same batch may meet its window); the window answers for the
   * others (into `results`). Returns the other tasks, to be added together, and what was written.
   */
  async #throttleAndDebounce(tasks: readonly PreparedTask[], results: Array<EnqueueResult | undefined>): Promise<{ items: Array<{ index: number; task: PreparedTask }>; written: Array<[queue: string, ids: string[]]> }> {
    const items: Array<{ index: number; task: PreparedTask }> = [];
    const written: Array<[queue: string, ids: string[]]> = [];
    for (const [index, task] of tasks.entries()) {
      if (!task.flow) {
        items.push({ index, task });
        continue;
      }
      const verdict = await this.#flow.admit(task as PreparedTask & { flow: FlowKey });
      if ('existing' in verdict) results[index] = { task: verdict.existing, created: false, flow: verdict.how };
      else written.push(...(await this.#addJobs([{ index, task }], results)));
    }
    return { items, written };
  }

  /** Adds the jobs, one call per pool queue, and fills in their answers. */
  async #addJobs(toAdd: ReadonlyArray<{ index: number; task: PreparedTask }>, results: Array<EnqueueResult | undefined>): Promise<Array<[queue: string, ids: string[]]>> {
    const byQueue = new Map<string, Array<{ index: number; task: PreparedTask }>>();
    for (const item of toAdd) {
      const list = byQueue.get(item.task.queue);
      if (list) list.push(item);
      else byQueue.set(item.task.queue, [item]);
    }
    const written: Array<[queue: string, ids: string[]]> = [];
    await Promise.all(
      [...byQueue.entries()].map(async ([name, items]) => {
        const queue = await this.#d.queues.forWriting(parseQueueName(name)!);
        const keyed = items.filter(({ task }) => task.envelope.concurrency);
        if (keyed.length > 0) {
          const tags = await this.#fair.tags(name, keyed.map(({ task }) => task.envelope.concurrency!.key));
          keyed.forEach(({ task }, j) => (task.opts.priority = tags[j]));
        }
        // One script call for the queue's jobs (src/task/job-batch.ts), as BullMQ's addBulk would write them.
        await addJobs(this.#d.redis, queue, items.map(({ task }) => ({ name: task.type.name, data: task.envelope, opts: task.opts })));
        written.push([name, items.map(({ task }) => task.id)]);
        for (const { index, task } of items) {
          results[index] = {
            created: true,
            task: {
              id: task.id,
              type: task.type.name,
              pool: task.routing.pool,
              state: task.routing.pool === PARKED_POOL ? 'parked' : task.opts.delay ? 'delayed' : 'waiting',
              routing: task.routing,
            },
          };
        }
      }),
    );
    return written;
  }

  /**
   * Throws when a key was reserved by a different request. Nothing is written then, so the keys this
   * request reserved just now are given back (only if they still hold its own value).
   */
  async #refuseReusedKeys<K extends { t: PreparedTask; index: number }>(keyed: readonly K[], replies: readonly unknown[], batch: boolean, release: (k: K) => Promise<unknown>): Promise<void> {
    const reused = keyed.flatMap((k, j) => {
      const previous = replies[j];
      if (typeof previous !== 'string') return [];
      const { fields, fingerprint } = readReservation(previous, 2);
      return fingerprint !== undefined && fingerprint !== k.t.fingerprint ? [{ k, id: fields[1] ?? '?' }] : [];
    });
    const first = reused[0];
    if (!first) return;
    await Promise.all(keyed.filter((_, j) => replies[j] === null).map(release));
    const more = reused.length > 1 ? `; ${reused.length - 1} more task(s) of the batch reuse keys too` : '';
    throw new IdempotencyKeyReusedError(first.k.t.key!, `task ${first.id}`, batch ? `tasks[${first.k.index}]${more}` : '');
  }

  /** The task an idempotency key points at: in its recorded queue, or wherever it was moved since. */
  async #existing(queueName: string, id: string): Promise<TaskSummary | undefined> {
    const ref = parseQueueName(queueName);
    if (!ref) return undefined;
    const job = (await this.#d.queues.find(ref.type, id, ref.pool)) as Job<TaskEnvelope> | undefined;
    if (!job) return undefined;
    const state = taskState(job, await job.getState());
    return state ? summaryOf(job, state) : undefined;
  }
}
