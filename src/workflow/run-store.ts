/**
 * A workflow run's state in Redis: written once when the run starts, then changed only by the
 * atomic scripts (claim, settle, cancel), so engines in several processes and agents settling
 * nodes never disagree. Every key shares the run's hash tag `{run:<id>}`.
 */
import type { TraceCarrier } from '../config/tracing.ts';
import type { RedisConnection } from '../redis/connection.ts';
import type { EventLog } from '../events/event-log.ts';
import { keys, RUN_KEY_SUFFIXES } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import { parseNodeJobId } from '../model/task-id.ts';
import { signalName } from '../model/signal-node.ts';
import { DEFAULT_RUN_NAME, type NodeFields, type WorkflowSpec } from '../model/workflow-definition.ts';
import { NODE_STATES, type NodeCounts, type NodeState, type Outcome, type RunState, type Step, type CompensationState } from '../model/workflow-states.ts';

export { FINAL_RUN_STATES, isFinal, NODE_STATES, RUN_STATES } from '../model/workflow-states.ts';
export type { FinalRunState, NodeCounts, NodeState, Outcome, RunState, Step, CompensationState } from '../model/workflow-states.ts';

/** What the engine needs to enqueue a node: its spec minus the id, plus its position in the request. */
export type StoredNode = NodeFields & { i: number };

export interface RunMeta {
  id: string;
  name: string;
  state: RunState;
  cause?: 'failure' | 'cancel';
  reason?: string;
  total: number;
  done: number;
  inflight: number;
  counts: NodeCounts;
  /** Compensations that ran, and how many of them failed. */
  compensationsRan: number;
  compensationsFailed: number;
  createdAt: number;
  finishedAt?: number;
  idempotencyKey?: string;
  /** Where the run's final view is POSTed when it ends. */
  callback?: string;
  /** Its end was told (event log, callback queued). */
  announced?: boolean;
}

export interface NodeInfo {
  pool?: string;
  /** A sleep node's wake time (ms). */
  wakeAt?: number;
  /** When a signal node stops waiting (ms). */
  timeoutAt?: number;
  /** A map node's items: how many, and how many of them are done, failed and running. */
  items?: MapItemCounts;
  attempts?: number;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
}

export interface MapItemCounts {
  total: number;
  done: number;
  failed: number;
  running: number;
}

/** Items of a map to add as tasks: the first one's index and their payloads (JSON). */
export interface MapItems {
  first: number;
  payloads: string[];
}

export interface CompensationEntry {
  node: string;
  state: 'done' | 'failed';
  at: number;
  pool?: string;
  attempts?: number;
  error?: string;
}

/** One page of a run's nodes, in request order. */
export interface NodePage {
  ids: string[];
  nodes: Map<string, StoredNode>;
  states: Map<string, NodeState>;
  info: Map<string, NodeInfo>;
  results: Map<string, unknown>;
  compensations: Map<string, CompensationState>;
}

export interface RunRecord {
  meta: RunMeta;
  nodes: Map<string, StoredNode>;
  states: Map<string, NodeState>;
  info: Map<string, NodeInfo>;
  results: Map<string, unknown>;
  compensations: Map<string, CompensationState>;
  log: CompensationEntry[];
}

const num = (v: string | undefined): number => (v === undefined ? 0 : Number(v));


/** Runs of more nodes than this keep their request order in a list (a page is one LRANGE); smaller ones save the key. */
const ORDER_LIST_ABOVE = 100;

export class RunStore {
  readonly #k: ReturnType<typeof keys>;

  constructor(
    readonly redis: RedisConnection,
    readonly prefix: string,
    /** Where node settles are told (GET /v1/events); absent: nowhere. */
    readonly events?: EventLog,
  ) {
    this.#k = keys(prefix);
  }

  key(runId: string, suffix: (typeof RUN_KEY_SUFFIXES)[number] = ''): string {
    return this.#k.workflow.run(runId) + suffix;
  }

  /** Writes a validated workflow as a new run in one MULTI (all keys in one slot); returns the stored definitions. */
  async create(runId: string, spec: WorkflowSpec, now: number, trace?: TraceCarrier): Promise<Map<string, StoredNode>> {
    const stored = new Map<string, StoredNode>();
    const m = this.redis.multi();
    const defs: string[] = [];
    const states: string[] = [];
    const wait: string[] = [];
    const next: string[] = [];
    const prev: string[] = [];
    const compensated: string[] = [];
    const signals: string[] = [];
    spec.nodes.forEach(({ id, ...node }, i) => {
      const signal = signalName(node);
      if (signal !== undefined) signals.push(signal, id);
      const def: StoredNode = { ...node, i };
      stored.set(id, def);
      defs.push(id, JSON.stringify(def));
      states.push(id, node.dependsOn.length === 0 ? 'ready' : 'pending');
      if (node.dependsOn.length > 0) {
        wait.push(id, String(node.dependsOn.length));
        prev.push(id, node.dependsOn.join(','));
      }
      const dependents = spec.dependents.get(id);
      if (dependents) next.push(id, dependents.join(','));
      if (node.compensate) compensated.push(id);
    });
    const roots = spec.nodes.filter((n) => n.dependsOn.length === 0).map((n) => n.id);
    // Counts that start at 0 are left out (the scripts count with HINCRBY, readers take a missing one
    // as 0), and so is the default name: a small run's meta hash stays small.
    const pending = spec.nodes.length - roots.length;
    m.hset(this.key(runId), {
      ...(spec.name !== DEFAULT_RUN_NAME ? { name: spec.name } : {}),
      state: 'running',
      total: spec.nodes.length,
      done: 0,
      inflight: 0,
      ...(pending > 0 ? { pending } : {}),
      ...(roots.length > 0 ? { ready: roots.length } : {}),
      createdAt: now,
      ...(spec.idempotencyKey ? { idempotencyKey: spec.idempotencyKey } : {}),
      ...(spec.callback ? { callback: spec.callback.url } : {}),
      ...(trace ? { trace: JSON.stringify(trace) } : {}),
    });
    m.hset(this.key(runId, ':defs'), ...defs);
    m.hset(this.key(runId, ':state'), ...states);
    if (wait.length) m.hset(this.key(runId, ':wait'), ...wait);
    if (next.length) m.hset(this.key(runId, ':next'), ...next);
    if (prev.length) m.hset(this.key(runId, ':prev'), ...prev);
    if (compensated.length) m.sadd(this.key(runId, ':undo'), ...compensated);
    if (signals.length) m.hset(this.key(runId, ':signals'), ...signals);
    m.sadd(this.key(runId, ':ready'), ...roots);
    // Request order, for paging through a big run's nodes; a small run's definitions are sorted on read.
    if (spec.nodes.length > ORDER_LIST_ABOVE) m.rpush(this.key(runId, ':order'), ...spec.nodes.map((n) => n.id));
    await m.exec();
    return stored;
  }

  /** A run's meta hash, node counts included: one HGETALL, whatever the run's size. */
  async meta(runId: string): Promise<RunMeta | undefined> {
    const meta = parseMeta(runId, await this.redis.hgetall(this.key(runId)));
    if (meta && !countsAddUp(meta)) meta.counts = await this.#countStates(runId);
    return meta;
  }

  /** Counts read from the node states, for a run written before the scripts kept counts (O(nodes), once per read). */
  async #countStates(runId: string): Promise<NodeCounts> {
    const counts = zeroCounts();
    for (const s of await this.redis.hvals(this.key(runId, ':state'))) if (s in counts) counts[s as NodeState]++;
    return counts;
  }

  /** Nodes `offset` to `offset + limit - 1` in request order, with their state, info, result and compensation state. */
  async page(runId: string, offset: number, limit: number): Promise<NodePage> {
    const page: NodePage = { ids: [], nodes: new Map(), states: new Map(), info: new Map(), results: new Map(), compensations: new Map() };
    if (limit <= 0) return page;
    let ids = await this.redis.lrange(this.key(runId, ':order'), offset, offset + limit - 1);
    if (ids.length === 0 && (await this.redis.exists(this.key(runId, ':order'))) === 0) {
      // A small run (or one written before the order list): sort its definitions once per read.
      const defs = Object.entries(await this.redis.hgetall(this.key(runId, ':defs'))).map(([id, json]) => [id, (JSON.parse(json) as StoredNode).i] as const);
      ids = defs.sort(([, a], [, b]) => a - b).slice(offset, offset + limit).map(([id]) => id);
    }
    if (ids.length === 0) return page;
    page.ids = ids;
    const replies = (await this.redis
      .pipeline()
      .hmget(this.key(runId, ':defs'), ...ids)
      .hmget(this.key(runId, ':state'), ...ids)
      .hmget(this.key(runId, ':info'), ...ids)
      .hmget(this.key(runId, ':results'), ...ids)
      .hmget(this.key(runId, ':undo-state'), ...ids)
      .exec()) ?? [];
    const column = (i: number): Array<string | null> => {
      const [err, v] = replies[i] ?? [new Error('no reply')];
      if (err) throw err;
      return v as Array<string | null>;
    };
    const [defs, states, info, results, compensations] = [column(0), column(1), column(2), column(3), column(4)];
    ids.forEach((id, i) => {
      const def = defs[i];
      if (def) page.nodes.set(id, JSON.parse(def) as StoredNode);
      const state = states[i];
      if (state) page.states.set(id, state as NodeState);
      const inf = info[i];
      if (inf) page.info.set(id, JSON.parse(inf) as NodeInfo);
      const result = results[i];
      if (result) page.results.set(id, JSON.parse(result) as unknown);
      const c = compensations[i];
      if (c) page.compensations.set(id, c as CompensationState);
    });
    await this.#liveItems(runId, page);
    return page;
  }

  /** A running map's item counts, read from its counters (its info has them once it settles). */
  async #liveItems(runId: string, page: NodePage): Promise<void> {
    const maps = page.ids.filter((id) => page.nodes.get(id)?.kind === 'map' && page.states.get(id) === 'queued');
    if (maps.length === 0) return;
    const p = this.redis.pipeline();
    for (const id of maps) p.hmget(this.key(runId, ':map'), ...['n', 'next', 'done', 'failed', 'taken'].map((f) => `${id}:${f}`));
    const replies = (await p.exec()) ?? [];
    maps.forEach((id, i) => {
      const [err, v] = replies[i] ?? [new Error('no reply')];
      if (err || !v || (v as Array<string | null>)[0] === null) return;
      const [n, next, done, failed, taken] = (v as Array<string | null>).map((x) => Number(x ?? 0)) as [number, number, number, number, number];
      page.info.set(id, { ...page.info.get(id), items: { total: n, done, failed, running: next - done - failed - taken } });
    });
  }

  /** The compensation log, in the order compensations settled. */
  async log(runId: string): Promise<CompensationEntry[]> {
    return (await this.redis.lrange(this.key(runId, ':log'), 0, -1)).map((e) => JSON.parse(e) as CompensationEntry);
  }

  /** The W3C trace context of the span that started a run (written by create when tracing was on); undefined if none or unreadable. */
  async trace(runId: string): Promise<TraceCarrier | undefined> {
    const raw = await this.redis.hget(this.key(runId), 'trace');
    try {
      return raw ? (JSON.parse(raw) as TraceCarrier) : undefined;
    } catch {
      return undefined; // not ours to fail on: the nodes start new traces
    }
  }

  /** A run's state and what is ready in its current phase, in one round trip (the engine's first look). */
  async peek(runId: string): Promise<{ state: RunState; ready: string[] } | undefined> {
    const replies = (await this.redis.pipeline().hget(this.key(runId), 'state').smembers(this.key(runId, ':ready')).smembers(this.key(runId, ':undo-ready')).exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    const state = replies[0]?.[1] as RunState | null;
    if (!state) return undefined;
    return { state, ready: (replies[state === 'compensating' ? 2 : 1]?.[1] ?? []) as string[] };
  }

  async nodes(runId: string, ids: readonly string[]): Promise<Map<string, StoredNode>> {
    const out = new Map<string, StoredNode>();
    if (ids.length === 0) return out;
    const raw = await this.redis.hmget(this.key(runId, ':defs'), ...ids);
    ids.forEach((id, i) => {
      const json = raw[i];
      if (json) out.set(id, JSON.parse(json) as StoredNode);
    });
    return out;
  }

  async results(runId: string, ids: readonly string[]): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (ids.length === 0) return out;
    const raw = await this.redis.hmget(this.key(runId, ':results'), ...ids);
    ids.forEach((id, i) => {
      const json = raw[i];
      if (json) out[id] = JSON.parse(json) as unknown;
    });
    return out;
  }

  /**
   * Claims ready nodes (or compensations), recording what their kind knows of each start (a task's
   * pool); returns those claimed (the others were claimed elsewhere meanwhile).
   */
  claim(runId: string, step: Step, nodes: ReadonlyMap<string, NodeInfo>): Promise<string[]> {
    const args: string[] = [this.#k.workflow.events, step];
    for (const [id, info] of nodes) args.push(id, JSON.stringify(info));
    return scripts.workflowClaim.run(this.redis, [this.key(runId)], args);
  }

  /**
   * Records how a node (or its compensation) ended; false when it had already settled. `byItsTask`:
   * an agent settles its task node, whose task events already say it (no node event).
   */
  async settle(runId: string, step: Step, node: string, outcome: Outcome, payload: string, info: NodeInfo, now = Date.now(), byItsTask = false): Promise<boolean> {
    const r = await scripts.workflowSettle.run(this.redis, [this.key(runId)], [this.#k.workflow.events, step, node, outcome, payload, String(now), JSON.stringify(info)]);
    if (r === 1 && step === 'node' && !byItsTask) this.events?.append({ kind: 'node', run: runId, node, state: outcome === 'done' || outcome === 'skipped' ? outcome : 'dead', at: now });
    return r === 1;
  }

  /**
   * A signal for the run's signal node `name` (workflow-signal.lua): `waits` (the node waits for it:
   * settle it), `kept` (not reached yet: kept for it), `late` (settled, or one already delivered or
   * kept), or why there is no such node.
   */
  async signal(runId: string, name: string, payload: string): Promise<{ outcome: 'no-run' | 'no-signal' | 'waits' | 'kept' | 'late'; node: string; state: string }> {
    const [code, node, state] = await scripts.workflowSignal.run(this.redis, [this.key(runId)], [this.#k.workflow.events, name, payload]);
    return { outcome: (['no-run', 'no-signal', 'waits', 'kept', 'late'] as const)[code], node, state };
  }

  /** What a node's claim (or settle) recorded of it: its pool, start, wake or timeout time. */
  async nodeInfo(runId: string, id: string): Promise<NodeInfo> {
    return JSON.parse((await this.redis.hget(this.key(runId, ':info'), id)) ?? '{}') as NodeInfo;
  }

  /** The node a run's signal `name` goes to, if the run has one. */
  signalNode(runId: string, name: string): Promise<string | null> {
    return this.redis.hget(this.key(runId, ':signals'), name);
  }

  /** Payloads sent to signals before their nodes were reached, by name (absent: none kept). */
  async inbox(runId: string, names: readonly string[]): Promise<Array<string | null>> {
    return names.length === 0 ? [] : this.redis.hmget(this.key(runId, ':inbox'), ...names);
  }

  /** Cancels a run; returns its state before ('' when there is no such run). */
  cancel(runId: string, reason: string, now = Date.now()): Promise<string> {
    return scripts.workflowCancel.run(this.redis, [this.key(runId)], [this.#k.workflow.events, String(now), reason]);
  }

  /** Everything about a run, for views and repairs. */
  async record(runId: string): Promise<RunRecord | undefined> {
    const p = this.redis.pipeline();
    p.hgetall(this.key(runId));
    p.hgetall(this.key(runId, ':defs'));
    p.hgetall(this.key(runId, ':state'));
    p.hgetall(this.key(runId, ':info'));
    p.hgetall(this.key(runId, ':results'));
    p.hgetall(this.key(runId, ':undo-state'));
    p.lrange(this.key(runId, ':log'), 0, -1);
    const replies = (await p.exec()) ?? [];
    const value = <T>(i: number): T => {
      const [err, v] = replies[i] ?? [new Error('no reply')];
      if (err) throw err;
      return v as T;
    };
    const meta = parseMeta(runId, value<Record<string, string>>(0));
    if (!meta) return undefined;
    const parse = <T>(h: Record<string, string>) => new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as T]));
    const nodes = parse<StoredNode>(value(1));
    const states = new Map(Object.entries(value<Record<string, NodeState>>(2)));
    if (!countsAddUp(meta)) {
      meta.counts = zeroCounts();
      for (const st of states.values()) meta.counts[st]++;
    }
    return {
      meta,
      nodes: new Map([...nodes].sort(([, a], [, b]) => a.i - b.i)),
      states,
      info: parse<NodeInfo>(value(3)),
      results: parse<unknown>(value(4)),
      compensations: new Map(Object.entries(value<Record<string, CompensationState>>(5))),
      log: value<string[]>(6).map((e) => JSON.parse(e) as CompensationEntry),
    };
  }

  /**
   * Claims a ready map node with its items' payloads (JSON, in order) and starts its first items
   * (workflow-map-start.lua); undefined when it was not claimed (claimed elsewhere, or the run stopped).
   */
  async mapStart(runId: string, node: string, concurrency: number, tolerate: number, payloads: readonly string[], now = Date.now()): Promise<MapItems | undefined> {
    const r = await scripts.workflowMapStart.run(this.redis, [this.key(runId)], [this.#k.workflow.events, node, String(concurrency), String(tolerate), String(now), ...payloads]);
    return r[0] === -1 ? undefined : mapItems(r);
  }

  /** A map node in the ready set: 'ready' (to start), or the next items it may start now (workflow-map-take.lua). */
  async mapTake(runId: string, node: string): Promise<'ready' | MapItems> {
    const r = await scripts.workflowMapTake.run(this.redis, [this.key(runId)], [this.#k.workflow.events, node]);
    return r[0] === -1 ? 'ready' : mapItems(r);
  }

  /**
   * Records how item `index` of a map node ended (done: its result JSON; dead: the error): whether it
   * settled (false: it had already), and the next items it started in its place (to add as tasks).
   */
  async settleItem(runId: string, node: string, index: number, outcome: Outcome, payload: string, now = Date.now()): Promise<{ settled: boolean; next?: MapItems }> {
    const r = await scripts.workflowMapItem.run(this.redis, [this.key(runId)], [this.#k.workflow.events, node, String(index), outcome, payload, String(now)]);
    const code = Number(r[0]);
    // 2, 3, 4: the item settled its map, done, dead or skipped
    if (code >= 2) this.events?.append({ kind: 'node', run: runId, node, state: (['done', 'dead', 'skipped'] as const)[code - 2]!, at: now });
    return { settled: code >= 1, ...(code === 1 && Number(r[2]) > 0 ? { next: mapItems(r.slice(1)) } : {}) };
  }

  /** A map's items that started and have not settled, with their payloads (for the sweep and a stopping run). */
  async mapOpen(runId: string, node: string): Promise<Map<number, string>> {
    const started = Number((await this.redis.hget(this.key(runId, ':map'), `${node}:next`)) ?? 0);
    const open = new Map<number, string>();
    for (let i = 0; i < started; i += 1000) {
      const fields = Array.from({ length: Math.min(1000, started - i) }, (_, j) => `${node}:${i + j}`);
      const replies = (await this.redis.pipeline().hmget(this.key(runId, ':map-out'), ...fields).hmget(this.key(runId, ':map-items'), ...fields).exec()) ?? [];
      const [outs, items] = replies.map(([err, v]) => {
        if (err) throw err;
        return v as Array<string | null>;
      });
      fields.forEach((_, j) => {
        if (outs![j] === null && items![j] !== null) open.set(i + j, items![j]!);
      });
    }
    return open;
  }

  /** The agent type of a task node's job (`<runId>.<node>` or `<runId>.<node>.undo`), for task lookups. */
  async typeOfJob(jobId: string): Promise<string | undefined> {
    const ref = parseNodeJobId(jobId);
    if (!ref) return undefined;
    const json = await this.redis.hget(this.key(ref.runId, ':defs'), ref.node);
    if (!json) return undefined;
    const node = JSON.parse(json) as StoredNode;
    return ref.compensation ? node.compensate?.type : typeof node.type === 'string' ? node.type : undefined;
  }

  /** Lets a finished run's keys expire after `ttlS`. */
  async expire(runId: string, ttlS: number): Promise<void> {
    const p = this.redis.pipeline();
    for (const s of RUN_KEY_SUFFIXES) p.expire(this.key(runId, s), ttlS);
    await p.exec();
  }
}

const zeroCounts = (): NodeCounts => ({ pending: 0, ready: 0, queued: 0, done: 0, dead: 0, skipped: 0, cancelled: 0 });

/** Whether the stored counts cover every node (false for a run written before the scripts kept counts). */
function countsAddUp(meta: RunMeta): boolean {
  const c = meta.counts;
  const all = NODE_STATES.every((s) => c[s] >= 0);
  return all && NODE_STATES.reduce((sum, s) => sum + c[s], 0) === meta.total;
}

function parseMeta(id: string, h: Record<string, string>): RunMeta | undefined {
  if (!h.state) return undefined;
  const counts: NodeCounts = {
    pending: num(h.pending),
    ready: num(h.ready),
    queued: num(h.inflight),
    done: num(h.done),
    dead: num(h.dead),
    skipped: num(h.skipped),
    cancelled: num(h.cancelled),
  };
  return {
    id,
    name: h.name ?? DEFAULT_RUN_NAME,
    state: h.state as RunState,
    ...(h.cause ? { cause: h.cause as 'failure' | 'cancel' } : {}),
    ...(h.reason ? { reason: h.reason } : {}),
    total: num(h.total),
    done: num(h.done),
    inflight: num(h.inflight),
    counts,
    compensationsRan: num(h.undoRan),
    compensationsFailed: num(h.undoFailed),
    createdAt: num(h.createdAt),
    ...(h.finishedAt ? { finishedAt: num(h.finishedAt) } : {}),
    ...(h.idempotencyKey ? { idempotencyKey: h.idempotencyKey } : {}),
    ...(h.callback ? { callback: h.callback } : {}),
    ...(h.announced ? { announced: true } : {}),
  };
}

function mapItems(r: ReadonlyArray<number | string | null>): MapItems {
  return { first: Number(r[0]), payloads: r.slice(2, 2 + Number(r[1])).map((p) => String(p)) };
}
