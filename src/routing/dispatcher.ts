/**
 * Moves tasks that are in the wrong place: parked tasks to a pool once one is eligible, and the
 * waiting tasks and pending retries of a pool that has stayed ineligible for `graceMs` (no serving
 * agent, or a breaker that has not closed since it opened) to the eligible pools of their type. A
 * move adds the task to its new queue (same id) before removing it from the old one: a crash in
 * between leaves two copies, never none (at-least-once). Runs as a leased chore in API processes,
 * which hold the fleet snapshot.
 *
 * A pool whose every agent died also leaves tasks in its active list, locked by agents that will
 * never renew the lock. BullMQ's stalled check runs inside Workers of that queue, and there are
 * none left: the dispatcher runs the check itself (a Worker that never pulls) for such pools, so
 * those tasks go back to waiting and then move on like the rest.
 */
import { Worker, type Job, type Queue } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import type { Catalogue } from '../model/catalogue.ts';
import type { Logger } from '../config/logger.ts';
import { PARKED_POOL, poolBreakerName, type PoolRef } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import { moveTask } from '../task/move.ts';
import type { RoutingDecision } from '../model/routing.ts';
import type { FleetRouter } from './router.ts';
import type { FleetSnapshot } from './snapshot.ts';
import { taskLogFields } from '../model/task-id.ts';

export interface DispatcherOptions {
  queues: PoolQueues;
  router: FleetRouter;
  snapshot: FleetSnapshot;
  catalogue: Catalogue;
  log: Logger;
  /** How long a pool may stay ineligible before its waiting tasks move elsewhere. */
  graceMs: number;
  /** Tasks looked at per pool per round. */
  batch?: number;
  /** For the stalled check of pools without live agents: the agents' lock settings, and a connection. */
  stalled?: { connection: RedisConnection; prefix: string; lockMs: number; stalledIntervalMs: number; maxStalled: number };
}

export class Dispatcher {
  readonly #ineligibleSince = new Map<string, number>();
  readonly #batch: number;
  /** Stalled checkers of pools that have no live agent, by queue name. */
  readonly #guards = new Map<string, Worker>();

  constructor(private readonly o: DispatcherOptions) {
    this.#batch = o.batch ?? 500;
  }

  async run(now = Date.now()): Promise<void> {
    for (const type of this.o.catalogue.names) {
      if (this.o.snapshot.parked(type) > 0) await this.#dispatchParked(type, now);
      await this.#rerouteStranded(type, now);
    }
  }

  async #dispatchParked(type: string, now: number): Promise<void> {
    const parked = this.o.queues.get({ type, pool: PARKED_POOL });
    // No agent pulls from the parked queue, so nothing promotes its delayed tasks: take both.
    const jobs = (await parked.getJobs(['waiting', 'prioritized', 'delayed'], 0, this.#batch - 1, true)) as Job<TaskEnvelope>[];
    for (const job of jobs) {
      const decision = this.#route(type, job);
      if (decision.pool !== PARKED_POOL) await this.#move(job, { type, pool: decision.pool }, decision, now);
    }
  }

  async #rerouteStranded(type: string, now: number): Promise<void> {
    const policy = this.o.catalogue.get(type).breaker;
    for (const p of this.o.snapshot.pools(type)) {
      const key = `${type}.${p.pool}`;
      await this.#guard(p, p.agents.every((a) => a.health === 'UNKNOWN'));
      // A breaker counts from when it opened until it closes: its open time ending (probes admitted) does
      // not restart the grace, or with openMs <= graceMs the retries of a pool that keeps failing its
      // probes would never move (they waited out trip after trip: issue 18).
      const breaker = poolBreakerName(p);
      const tripped = this.o.snapshot.breakers.state(breaker) !== 'CLOSED';
      if (p.serving.length > 0 && !tripped) {
        this.#ineligibleSince.delete(key);
        continue;
      }
      const halfOpenAt = this.o.snapshot.breakers.halfOpenAt(breaker);
      const openedAt = halfOpenAt === undefined ? now : Math.min(now, halfOpenAt - policy.openMs);
      const since = Math.min(this.#ineligibleSince.get(key) ?? now, openedAt);
      this.#ineligibleSince.set(key, since);
      if (now - since < this.o.graceMs) continue;
      const queue = this.o.queues.get(p);
      // Retries of tasks that failed here wait in `delayed`: they move too, keeping what is left of their delay.
      const ready = (await queue.getJobs(['waiting', 'prioritized'], 0, this.#batch - 1, true)) as Job<TaskEnvelope>[];
      const delayed = (await queue.getJobs(['delayed'], 0, this.#batch - 1, true)) as Job<TaskEnvelope>[];
      // Once the breaker admits probes, the pool keeps as many tasks as it admits probes (ready ones
      // first): its agents take them as probes, which close the breaker or open it again (and then
      // those move too). A kept retry that is due is promoted: an agent that paused while its breaker
      // was OPEN does not look at its delayed tasks again until BullMQ's next poll, up to 10 s later.
      // One that is not due yet keeps its backoff.
      let keep = p.serving.length > 0 && this.o.snapshot.breakers.heldUntil(breaker, now) === undefined ? policy.halfOpenProbes : 0;
      let moved = 0;
      for (const [i, job] of [...ready, ...delayed].entries()) {
        if (job.data.route?.pool) continue; // the producer asked for this pool: it waits there
        if (keep > 0) {
          keep--;
          if (i >= ready.length && (await this.#due(queue, job, now))) await job.promote().catch(() => undefined); // no longer delayed: nothing to do
          continue;
        }
        const decision = this.#route(type, job);
        if (decision.pool === PARKED_POOL || decision.pool === p.pool) continue;
        if (await this.#move(job, { type, pool: decision.pool }, { ...decision, reason: `re-routed from ${p.pool} (ineligible for ${Math.round((now - since) / 1000)} s): ${decision.reason}` }, now)) moved++;
      }
      if (moved) this.o.log.info({ type, from: p.pool, moved }, 're-routed waiting tasks away from an ineligible pool');
    }
  }

  /** Whether a delayed job's time has come (BullMQ scores its delayed set by due time × 4096 + a counter). */
  async #due(queue: Queue, job: Job, now: number): Promise<boolean> {
    const score = await this.o.queues.redis.zscore(queue.keys.delayed!, job.id!);
    return score !== null && Math.floor(Number(score) / 0x1000) <= now;
  }

  /** Starts or stops the stalled check of a pool, as it loses or regains live agents. */
  async #guard(ref: PoolRef, orphaned: boolean): Promise<void> {
    const s = this.o.stalled;
    if (!s) return;
    const name = this.o.queues.get(ref).name;
    const guard = this.#guards.get(name);
    if (orphaned && !guard) {
      const worker = new Worker(name, null, {
        connection: s.connection,
        prefix: s.prefix,
        autorun: false,
        lockDuration: s.lockMs,
        stalledInterval: s.stalledIntervalMs,
        maxStalledCount: s.maxStalled,
      });
      worker.on('error', (err) => this.o.log.warn({ err: err.message, queue: name }, 'stalled check of an orphaned pool failed'));
      this.#guards.set(name, worker);
      await worker.startStalledCheckTimer();
      this.o.log.info({ queue: name }, 'pool has no live agent: checking its active tasks for stalls');
    } else if (!orphaned && guard) {
      this.#guards.delete(name);
      await guard.close();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#guards.values()].map((w) => w.close()));
    this.#guards.clear();
  }

  #route(type: string, job: Job<TaskEnvelope>): RoutingDecision {
    const r = job.data.route ?? {};
    return this.o.router.route({ type, pool: r.pool, strategy: r.strategy, version: r.version, tags: job.data.tags });
  }

  async #move(job: Job<TaskEnvelope>, to: PoolRef, routing: RoutingDecision, now: number): Promise<boolean> {
    const moved = await moveTask(this.o.queues, job, to, routing, { now });
    // Taken from its old queue meanwhile: it stays there (the new copy was taken back); a later round moves it if it comes back.
    if (!moved) this.o.log.info({ ...taskLogFields(job.id), type: job.name }, 'a task to move was taken from its old queue meanwhile; it stays there');
    return moved;
  }
}
