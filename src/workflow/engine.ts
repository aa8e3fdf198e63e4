/**
 * The workflow engine: moves runs forward. Nodes settle through src/redis/lua/workflow-settle.lua,
 * which publishes the run id when the engine has something to do; the engine then starts the ready
 * nodes, each through its kind (node-kinds.ts: a task is routed *now* and added to its pool's queue),
 * takes back queued nodes of a failing or cancelled run, starts compensations, and releases a
 * finished run.
 *
 * The run's own keys (`{run:<id>}`, run-store.ts) are its truth: which nodes are queued, running,
 * done. The run job (queue `{workflows}`, for Bull Board and for anyone waiting on a job) waits in
 * BullMQ's delayed set while the run goes on; the engine promotes it once the run has ended, and it
 * then finishes with the run's outcome. (Runs started before this kept their job open with a gate
 * child in `{workflows}.gates`, which the engine still removes.) Node jobs are not BullMQ children of
 * the run job: they live in pool queues, in other hash slots, and BullMQ's parent-child scripts must
 * stay in one slot to run on a Redis Cluster (bullmq #2589).
 *
 * Safe in several processes at once: nodes are claimed atomically before they start (a task's job id
 * is deterministic, `<runId>.<nodeId>`), and a periodic sweep (sweep.ts) repairs what a crash
 * interrupted (a node queued but never started, work finished but never settled).
 */
import { tracingOn, type TraceCarrier } from '../config/tracing.ts';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import type { Catalogue } from '../model/catalogue.ts';
import type { Logger } from '../config/logger.ts';
import { keys } from '../redis/keys.ts';
import type { EventLog } from '../events/event-log.ts';
import type { CallbackOutbox } from '../callbacks/callback-outbox.ts';
import { GATE_QUEUE, RUN_JOB_HOLD_MS, WORKFLOW_QUEUE } from '../model/names.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import type { TaskProducer } from '../task/producer.ts';
import type { NodeContext, NodeKind } from './node-kind.ts';
import { COMPENSATION_KIND, kindLookup, NODE_KINDS } from './node-kinds.ts';
import { NodeTimers, type DueTimer } from './node-timers.ts';
import { conditionHolds, type Condition } from '../model/condition.ts';
import { isFinal, RunStore, type Step, type StoredNode } from './run-store.ts';
import { SWEEP_AFTER_MS, WorkflowSweep } from './sweep.ts';

export interface WorkflowEngineOptions {
  redis: RedisConnection;
  /** A connection in subscriber mode (shared with other listeners is fine). */
  subscriber: RedisConnection;
  queues: PoolQueues;
  producer: TaskProducer;
  catalogue: Catalogue;
  prefix: string;
  /** How long a finished run stays readable. */
  keepRunsS: number;
  log: Logger;
  /** The node kinds runs may use; by default every registered kind (node-kinds.ts). */
  kinds?: readonly NodeKind[];
  /** Where node settles and finished runs are told (GET /v1/events). */
  events?: EventLog;
  /** Where the callbacks of runs that end are queued. */
  callbacks?: CallbackOutbox;
}

/** Node definitions kept in memory (they never change), across runs, before the oldest runs are dropped. */
const CACHED_NODES = 200_000;
/** Runs whose trace context is kept in memory. */
const CACHED_TRACES = 10_000;

export class WorkflowEngine {
  readonly store: RunStore;
  /** What node kinds are handed (node-kind.ts). */
  readonly nodes: NodeContext;
  /** The node kinds runs may use. */
  readonly kinds: readonly NodeKind[];
  /** The kind of a stored node (undefined: not among `kinds`). */
  readonly kindOf: (def: StoredNode) => NodeKind | undefined;
  readonly #o: WorkflowEngineOptions;
  readonly #k: ReturnType<typeof keys>;
  readonly #gates: Queue;
  readonly #runQueue: Queue;
  readonly #runs = new Map<string, { again: boolean; done: Promise<void> }>();
  readonly #sweep: WorkflowSweep;
  /** When this process last marked each run as moving in the sweep's index. */
  readonly #touched = new Map<string, number>();
  /** runId -> its node definitions, as written when the run started (oldest run first). */
  readonly #defs = new Map<string, Map<string, StoredNode>>();
  #cachedNodes = 0;
  /** runId -> its trace context (tracing on only), oldest first. */
  readonly #traces = new Map<string, TraceCarrier | undefined>();
  #finalizer: Worker | undefined;
  readonly #timers: NodeTimers;
  #onMessage: ((channel: string, message: string) => void) | undefined;

  constructor(o: WorkflowEngineOptions) {
    this.#o = o;
    this.#k = keys(o.prefix);
    this.store = new RunStore(o.redis, o.prefix, o.events);
    this.kinds = o.kinds ?? NODE_KINDS;
    this.kindOf = kindLookup(this.kinds);
    this.#timers = new NodeTimers(o.redis, o.prefix, o.log, (t) => this.#onTimer(t));
    this.nodes = { store: this.store, timers: this.#timers, redis: o.redis, prefix: o.prefix, queues: o.queues, producer: o.producer, catalogue: o.catalogue, log: o.log, runTrace: (runId) => this.#runTrace(runId) };
    this.#gates = new Queue(GATE_QUEUE, { connection: o.redis, prefix: o.prefix });
    this.#gates.on('error', () => undefined);
    this.#runQueue = new Queue(WORKFLOW_QUEUE, { connection: o.redis, prefix: o.prefix });
    this.#runQueue.on('error', () => undefined);
    this.#sweep = new WorkflowSweep(this, o.redis, this.#k.workflow.active, o.log);
  }

  /** The queue of run jobs (for Bull Board). */
  get runQueue(): Queue {
    return this.#runQueue;
  }

  /** Listens for runs that need the engine, and finishes run jobs whose gate was released. */
  async start(finalizerConnection: RedisConnection): Promise<void> {
    const channel = this.#k.workflow.events;
    this.#onMessage = (ch, runId) => {
      if (ch === channel) void this.kick(runId);
    };
    this.#o.subscriber.on('message', this.#onMessage);
    await this.#o.subscriber.subscribe(channel);
    this.#finalizer = new Worker(WORKFLOW_QUEUE, (job, token) => this.#finalize(job, token), {
      connection: finalizerConnection,
      prefix: this.#o.prefix,
      // Finished run jobs are kept as long as runs (a run job written by an older version says so itself).
      removeOnComplete: { age: this.#o.keepRunsS },
      removeOnFail: { age: this.#o.keepRunsS },
      concurrency: 20,
    });
    this.#finalizer.on('error', (err) => this.#o.log.warn({ err: err.message }, 'workflow finalizer error'));
    this.#timers.start();
  }

  /** A node's timer is due: its kind says what happens (a node whose run is gone or whose kind has no timers: nothing). */
  async #onTimer(t: DueTimer): Promise<void> {
    const def = (await this.#nodes(t.runId, [t.nodeId])).get(t.nodeId);
    const kind = def && this.kindOf(def);
    await kind?.onTimer?.(this.nodes, t.runId, t.nodeId, def!, t.at);
  }

  async stop(): Promise<void> {
    if (this.#onMessage) this.#o.subscriber.off('message', this.#onMessage);
    await Promise.allSettled([...this.#runs.values()].map((r) => r.done));
    await Promise.all([this.#finalizer?.close(), this.#gates.close(), this.#runQueue.close(), this.#timers.stop()]);
  }

  /**
   * Moves a run forward. Calls for one run never overlap in this process: a call arriving while
   * one runs makes it go round once more (many wake-ups collapse into one pass).
   */
  kick(runId: string): Promise<void> {
    const running = this.#runs.get(runId);
    if (running) {
      running.again = true;
      return running.done;
    }
    const state = { again: false, done: Promise.resolve() };
    state.done = (async () => {
      do {
        state.again = false;
        try {
          await this.#advance(runId);
        } catch (err) {
          this.#o.log.warn({ runId, err: err instanceof Error ? err.message : String(err) }, 'could not advance a workflow run; the sweep retries');
        }
      } while (state.again);
    })().finally(() => this.#runs.delete(runId));
    this.#runs.set(runId, state);
    return state.done;
  }

  async #advance(runId: string): Promise<void> {
    const run = await this.store.peek(runId);
    if (!run) return;
    switch (run.state) {
      case 'running':
        return this.#startReady(runId, 'node', run.ready);
      case 'compensating':
        return this.#startReady(runId, 'compensation', run.ready);
      case 'failing':
      case 'cancelling':
        return this.#stopQueued(runId, run.state === 'cancelling');
      default:
        return this.#release(runId);
    }
  }

  /** Starts the ready nodes (or compensations), each kind its own; a node of a kind no longer registered settles dead. */
  async #startReady(runId: string, step: Step, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const defs = await this.#nodes(runId, ids);
    const skipped = step === 'node' ? await this.#skipByCondition(runId, ids, defs) : new Set<string>();
    const byKind = new Map<NodeKind, Map<string, StoredNode>>();
    for (const id of ids) {
      const def = defs.get(id);
      if (!def || skipped.has(id)) continue;
      const kind = step === 'compensation' ? COMPENSATION_KIND : this.kindOf(def);
      if (!kind) {
        await this.store.settle(runId, step, id, 'dead', `node kind ${JSON.stringify(def.kind)} is not registered any more`, {});
        continue;
      }
      const group = byKind.get(kind) ?? new Map<string, StoredNode>();
      byKind.set(kind, group.set(id, def));
    }
    const started = (await Promise.all([...byKind].map(([kind, nodes]) => kind.start(this.nodes, runId, step, nodes)))).filter((s) => s.claimed.length > 0);
    if (started.length === 0) return;
    const quietUntil = started.every((s) => s.quietUntil !== undefined) ? Math.min(...started.map((s) => s.quietUntil!)) : undefined;
    if (quietUntil === undefined || !(await this.#leaveAlone(runId, started.reduce((n, s) => n + s.claimed.length, 0), quietUntil))) this.#touch(runId);
  }

  /**
   * Ready nodes whose condition (`when`) is false on their dependency's result: claimed and settled
   * skipped (their dependents then go on without them, or are skipped in turn: workflow-settle.lua).
   * Returns them.
   */
  async #skipByCondition(runId: string, ids: readonly string[], defs: ReadonlyMap<string, StoredNode>): Promise<Set<string>> {
    const conditional = ids.filter((id) => defs.get(id)?.when);
    if (conditional.length === 0) return new Set();
    const reads = new Map(conditional.map((id) => [id, (defs.get(id)!.when!.node ?? defs.get(id)!.dependsOn[0])!]));
    const results = await this.store.results(runId, [...new Set(reads.values())]);
    const skip = conditional.filter((id) => !conditionHolds(defs.get(id)!.when as Condition, results[reads.get(id)!]));
    if (skip.length === 0) return new Set();
    const claimed = await this.store.claim(runId, 'node', new Map(skip.map((id) => [id, {}])));
    for (const id of claimed) await this.store.settle(runId, 'node', id, 'skipped', '', {});
    return new Set(skip);
  }

  /**
   * Nodes that only wait (sleeps, signals) just started: when nothing else of the run is in flight,
   * the sweep need not look at it until the first of them can change (a sleeping run costs nothing
   * till then). Returns whether it was left alone.
   */
  async #leaveAlone(runId: string, started: number, quietUntil: number): Promise<boolean> {
    const now = Date.now();
    if (quietUntil - now <= 2 * SWEEP_AFTER_MS) return false;
    if (Number(await this.#o.redis.hget(this.store.key(runId), 'inflight')) !== started) return false;
    this.#touched.set(runId, now);
    await this.#o.redis.zadd(this.#k.workflow.active, 'XX', quietUntil - SWEEP_AFTER_MS, runId);
    return true;
  }

  /** A run that moves is not stale: tells the sweep so, at most twice per sweep period (not per advance). */
  #touch(runId: string): void {
    const now = Date.now();
    if (now - (this.#touched.get(runId) ?? 0) < SWEEP_AFTER_MS / 2) return;
    if (this.#touched.size > 10_000) for (const [id, t] of this.#touched) if (now - t > SWEEP_AFTER_MS) this.#touched.delete(id);
    this.#touched.set(runId, now);
    void this.#o.redis.zadd(this.#k.workflow.active, 'XX', now, runId).catch(() => undefined);
  }

  /** Remembers the definitions of a run this process started, so advancing it reads none from Redis. */
  remember(runId: string, nodes: ReadonlyMap<string, StoredNode>): void {
    this.#defs.set(runId, new Map(nodes));
    this.#cachedNodes += nodes.size;
    for (const [id, m] of this.#defs) {
      if (this.#cachedNodes <= CACHED_NODES || id === runId) break;
      this.#defs.delete(id);
      this.#cachedNodes -= m.size;
    }
  }

  async #nodes(runId: string, ids: readonly string[]): Promise<Map<string, StoredNode>> {
    const cached = this.#defs.get(runId);
    if (cached && ids.every((id) => cached.has(id))) return cached;
    return this.store.nodes(runId, ids);
  }

  /** A run's trace context (read once per run and process, only while tracing is on). */
  async #runTrace(runId: string): Promise<TraceCarrier | undefined> {
    if (!tracingOn()) return undefined;
    if (this.#traces.has(runId)) return this.#traces.get(runId);
    const carrier = await this.store.trace(runId);
    if (this.#traces.size >= CACHED_TRACES) this.#traces.delete(this.#traces.keys().next().value!);
    this.#traces.set(runId, carrier);
    return carrier;
  }

  #forget(runId: string): void {
    this.#traces.delete(runId);
    const m = this.#defs.get(runId);
    if (!m) return;
    this.#defs.delete(runId);
    this.#cachedNodes -= m.size;
  }

  /**
   * A failing run starts nothing new: queued nodes that have not started are taken back (and
   * count as skipped); running ones finish. A cancelled run also aborts the running ones.
   */
  async #stopQueued(runId: string, abort: boolean): Promise<void> {
    const rec = await this.store.record(runId);
    if (!rec) return;
    for (const [id, state] of rec.states) {
      if (state !== 'queued') continue;
      const kind = this.kindOf(rec.nodes.get(id)!);
      if (kind && (await kind.takeBack(this.nodes, rec, id, abort))) await this.store.settle(runId, 'node', id, 'skipped', '', {});
    }
  }

  /** A finished run: its run job goes on to finish, its keys expire, the sweep stops looking at it. */
  async #release(runId: string): Promise<void> {
    await this.#announce(runId);
    this.#forget(runId);
    this.#touched.delete(runId);
    const job = await this.#runQueue.getJob(runId);
    // Promoted if it waits in the delayed set; a run job of an older run waits for its gate instead.
    if (job && !(await job.promote().then(() => true, () => false))) await this.#gates.remove(runId);
    await this.store.expire(runId, this.#o.keepRunsS);
    await this.#o.redis.zrem(this.#k.workflow.active, runId);
  }

  /** Queues a finished run's callback and tells the event log it ended, once (the first engine to release it marks it announced). */
  async #announce(runId: string): Promise<void> {
    const meta = await this.store.meta(runId);
    if (!meta || meta.announced) return;
    // The callback first (queueing it twice is a no-op), so a crash before the mark below loses none.
    if (meta.callback) await this.#o.callbacks?.add({ kind: 'run', id: runId, state: meta.state, url: meta.callback });
    if ((await this.#o.redis.hsetnx(this.store.key(runId), 'announced', '1')) === 0) return;
    this.#o.events?.append({ kind: 'run', run: runId, name: meta.name, state: meta.state, ...(meta.reason ? { reason: meta.reason } : {}), at: meta.finishedAt ?? Date.now() });
  }

  /** The run job's processor: runs once the engine promoted it (or its hold ran out); its outcome is the run's. */
  async #finalize(job: Job, token: string | undefined): Promise<{ state: string; finishedAt?: number }> {
    const meta = await this.store.meta(job.id ?? '');
    if (!meta) throw new UnrecoverableError(`workflow run ${job.id} has no state left (expired?)`);
    if (!isFinal(meta.state)) {
      // A run longer than the hold (a year-long sleep): the job waits again.
      await job.moveToDelayed(Date.now() + RUN_JOB_HOLD_MS, token);
      throw new DelayedError(`workflow run ${meta.id} is still ${meta.state}`);
    }
    if (meta.state !== 'completed') throw new UnrecoverableError(`workflow ${meta.state}${meta.reason ? `: ${meta.reason}` : ''}`);
    return { state: meta.state, ...(meta.finishedAt ? { finishedAt: meta.finishedAt } : {}) };
  }

  /** Drops a run job whose run state was never written (creation cut off): nothing of it ever ran. */
  async dropRunJob(runId: string): Promise<void> {
    await this.#runQueue.remove(runId, { removeChildren: true });
  }

  /** A housekeeping chore: reconciles runs nobody has looked at for a while (see sweep.ts). */
  sweep(now = Date.now()): Promise<void> {
    return this.#sweep.run(now);
  }
}
