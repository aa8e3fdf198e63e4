/**
 * Workflow runs as the API sees them: start one (validated in full first; an idempotency key
 * returns the same run), read one (a page of its nodes at a time), list the newest (overviews
 * without nodes: one meta hash read per run), cancel one. The engine does the rest.
 */
import { currentCarrier, inSpan } from '../config/tracing.ts';
import { checkCallback } from '../model/callback.ts';
import type { RedisConnection } from '../redis/connection.ts';
import type { Catalogue } from '../model/catalogue.ts';
import { SwitchyardError, ValidationError } from '../model/errors.ts';
import { payloadIssues } from '../model/signal-node.ts';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from '../model/task-request.ts';
import { summarize } from '../model/validation.ts';
import { keys } from '../redis/keys.ts';
import { RUN_JOB_HOLD_MS } from '../model/names.ts';
import { newRunId, RUN_ID_PATTERN } from '../model/task-id.ts';
import { IdempotencyKeyReusedError, readReservation, requestFingerprint, reservationValue } from '../task/idempotency.ts';
import { validateWorkflow, type WorkflowSpec } from '../model/workflow-definition.ts';
import { waitForReplicas } from '../redis/replication.ts';
import { type ReplicaWait } from '../config/redis-url.ts';
import type { WorkflowEngine } from './engine.ts';
import { isFinal } from './run-store.ts';
import { runOverview, runView, type RunOverview, type RunSummary, type RunView } from './view.ts';

/** Nodes in one view unless the request asks for fewer: every node of the runs the tests and examples make. */
export const NODE_PAGE_DEFAULT = 1000;
/** Most nodes in one view (a 10 000-node run is ten pages; one answer stays under a few MB). */
export const NODE_PAGE_MAX = 1000;

export interface NodePageRequest {
  offset: number;
  limit: number;
}

export interface WorkflowRunsOptions {
  redis: RedisConnection;
  prefix: string;
  catalogue: Catalogue;
  engine: WorkflowEngine;
  maxNodes: number;
  idempotencyTtlS: number;
  keepRunsS: number;
  /** Replicas that must hold a new run before it is acknowledged (SWITCHYARD_WAIT_REPLICAS). */
  waitReplicas?: ReplicaWait;
  /** Completion callbacks: without a secret, a run with a callback is refused. */
  callbacks?: { secret?: string; hosts: readonly string[] };
}

export class WorkflowRuns {
  readonly #o: WorkflowRunsOptions;
  readonly #k: ReturnType<typeof keys>;

  constructor(o: WorkflowRunsOptions) {
    this.#o = o;
    this.#k = keys(o.prefix);
  }

  /** The node kinds a run may use (the engine's). */
  get kinds(): WorkflowEngine['kinds'] {
    return this.#o.engine.kinds;
  }

  /**
   * Validates and starts a run; `created` is false when an idempotency key matched an earlier run.
   * `runId` names it (a schedule's fire), else it gets a new one.
   */
  async start(raw: unknown, runId = newRunId()): Promise<{ run: RunSummary; created: boolean }> {
    const spec = validateWorkflow(raw, this.#o.catalogue, this.#o.maxNodes, this.#o.engine.kinds);
    if (spec.callback) checkCallback(spec.callback.url, this.#o.callbacks ?? { hosts: [] }, 'callback');
    if (spec.idempotencyKey) {
      // The reservation holds the validated request's fingerprint: the same key with another request is refused.
      const fingerprint = requestFingerprint({ name: spec.name, nodes: spec.nodes });
      const previous = await this.#o.redis.set(this.#k.workflow.idempotency(spec.idempotencyKey), reservationValue([runId], fingerprint), 'EX', this.#o.idempotencyTtlS, 'NX', 'GET');
      if (previous) {
        const reserved = readReservation(previous, 1);
        const first = reserved.fields[0]!;
        if (reserved.fingerprint !== undefined && reserved.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError(spec.idempotencyKey, `workflow run ${first}`);
        const meta = await this.#o.engine.store.meta(first);
        if (meta) return { run: { id: meta.id, name: meta.name, state: meta.state }, created: false };
        runId = first; // reserved by a request that died before writing the run: write it now
      }
    }
    return inSpan(`workflow ${spec.name}`, { attributes: { 'switchyard.run.id': runId, 'switchyard.run.nodes': spec.nodes.length } }, () => this.#create(runId, spec));
  }

  /** Writes a new run (inside its span, when tracing is on: its node tasks carry the span's context) and moves it. */
  async #create(runId: string, spec: WorkflowSpec): Promise<{ run: RunSummary; created: boolean }> {
    const now = Date.now();
    // Run job first, then the sweep's entry, then the state: the sweep drops a run job whose state was never written.
    // Its options stay under 64 bytes, so Redis keeps the job's hash compact (how long finished run jobs
    // are kept is the engine's finalizer's setting, not each job's).
    await this.#o.engine.runQueue.add(spec.name, { nodes: spec.nodes.length }, { jobId: runId, delay: RUN_JOB_HOLD_MS });
    await this.#o.redis.zadd(this.#k.workflow.active, now, runId);
    this.#o.engine.remember(runId, await this.#o.engine.store.create(runId, spec, now, currentCarrier()));
    if (this.#o.waitReplicas) await waitForReplicas(this.#o.redis, [this.#k.workflow.run(runId), this.#k.workflow.active], this.#o.waitReplicas);
    this.#o.engine.store.events?.append({ kind: 'run', run: runId, name: spec.name, state: 'running', at: now });
    await this.#o.engine.kick(runId);
    const meta = await this.#o.engine.store.meta(runId);
    return { run: { id: runId, name: spec.name, state: meta?.state ?? 'running' }, created: true };
  }

  /** A run with one page of its nodes (by default the first NODE_PAGE_DEFAULT), and its compensation log. */
  async view(id: string, page: NodePageRequest = { offset: 0, limit: NODE_PAGE_DEFAULT }): Promise<RunView> {
    const store = this.#o.engine.store;
    const meta = RUN_ID_PATTERN.test(id) ? await store.meta(id) : undefined;
    if (!meta) throw notFound(id, this.#o.keepRunsS);
    const [nodes, log] = await Promise.all([store.page(id, page.offset, page.limit), store.log(id)]);
    const logNodes = await store.nodes(id, [...new Set(log.map((e) => e.node).filter((n) => !nodes.nodes.has(n)))]);
    return runView(meta, nodes, page.offset, page.limit, log, logNodes, this.#o.engine.kindOf);
  }

  /** The newest runs, running or finished (as long as they are kept), newest first, without their nodes. */
  async recent(limit: number): Promise<RunOverview[]> {
    const jobIds = await this.#o.engine.runQueue.getRanges(['delayed', 'waiting-children', 'waiting', 'active', 'completed', 'failed'], 0, limit - 1);
    const ids = [...new Set(jobIds.filter((id) => RUN_ID_PATTERN.test(id)))];
    const metas = await Promise.all(ids.map((id) => this.#o.engine.store.meta(id)));
    return metas
      .flatMap((m) => (m ? [m] : []))
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit)
      .map(runOverview);
  }

  /** Cancels a run: nothing new starts, running nodes are aborted, completed ones compensated. */
  async cancel(id: string): Promise<RunView> {
    if (!RUN_ID_PATTERN.test(id)) throw notFound(id, this.#o.keepRunsS);
    const previous = await this.#o.engine.store.cancel(id, 'cancelled on request');
    if (previous === '') throw notFound(id, this.#o.keepRunsS);
    if (isFinal(previous)) throw new SwitchyardError('WORKFLOW_FINISHED', `workflow run ${id} already ended ${previous}; there is nothing to cancel`);
    await this.#o.engine.kick(id);
    return this.view(id);
  }

  /**
   * Delivers `payload` to the run's signal node `name`, exactly once: `delivered` when the node was
   * waiting (it is done with the payload as its result), `kept` when the node is not reached yet (it
   * takes the payload when it is). A payload its node's schema refuses is a 400 and nothing is kept;
   * a second signal, or one after the node settled or the run stopped, is a 409.
   */
  async signal(id: string, name: string, payload: unknown): Promise<{ run: string; node: string; signal: string; state: 'delivered' | 'kept' }> {
    if (typeof payload !== 'object' || payload === null) {
      throw new ValidationError(`a signal's payload is a JSON object or array, got ${payload === null ? 'null' : typeof payload}`, [{ path: 'payload', message: 'a JSON object or array' }]);
    }
    if (nestsDeeperThan(payload, MAX_PAYLOAD_DEPTH)) {
      throw new ValidationError(`a signal's payload may nest at most ${MAX_PAYLOAD_DEPTH} levels deep`, [{ path: 'payload', message: `nested more than ${MAX_PAYLOAD_DEPTH} levels deep` }]);
    }
    const store = this.#o.engine.store;
    const node = RUN_ID_PATTERN.test(id) ? await store.signalNode(id, name) : null;
    if (node === null) {
      if (!RUN_ID_PATTERN.test(id) || !(await store.meta(id))) throw notFound(id, this.#o.keepRunsS);
      throw new SwitchyardError('SIGNAL_NOT_FOUND', `workflow run ${id} has no signal node named ${JSON.stringify(name)}`);
    }
    const def = (await store.nodes(id, [node])).get(node);
    const issues = payloadIssues(def?.schema as Record<string, unknown> | undefined, payload);
    if (issues.length > 0) throw new ValidationError(`the payload of signal ${JSON.stringify(name)} is invalid: ${summarize(issues)}`, issues);
    const json = JSON.stringify(payload ?? null);
    const sent = await store.signal(id, name, json);
    if (sent.outcome === 'kept') return { run: id, node, signal: name, state: 'kept' };
    if (sent.outcome === 'waits') {
      const info = await store.nodeInfo(id, node);
      if (await store.settle(id, 'node', node, 'done', json, info)) {
        await this.#o.engine.nodes.timers.clear(id, node);
        return { run: id, node, signal: name, state: 'delivered' };
      }
    }
    const meta = await store.meta(id);
    const waiting = sent.state === 'pending' || sent.state === 'ready';
    const why = waiting ? (meta?.state === 'running' ? 'one was already sent and is kept for it' : `the run is ${meta?.state}`) : sent.state === 'queued' ? 'another signal was delivered first' : `its node ${node} is already ${sent.state}`;
    throw new SwitchyardError('SIGNAL_TAKEN', `signal ${JSON.stringify(name)} of workflow run ${id} was not delivered: ${why}`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function notFound(id: string, keepS: number): SwitchyardError {
  return new SwitchyardError('WORKFLOW_NOT_FOUND', `no workflow run with id ${JSON.stringify(id)} (finished runs are kept for ${keepS} s, SWITCHYARD_KEEP_WORKFLOWS_S)`);
}
