/**
 * The workflow sweep, a housekeeping chore of the API (src/housekeeping/housekeeper.ts): reconciles runs nobody has looked at for a while
 * and repairs what a crash left, asking each queued node's kind where its work is (node-kind.ts):
 * work that ended but whose settle was lost is settled now; a claimed node whose work never started
 * (a task's job never added) is started again (or skipped, if the run is stopping); a run whose
 * creation was cut off before its state was written is dropped.
 */
import type { RedisConnection } from '../redis/connection.ts';
import type { Logger } from '../config/logger.ts';
import { nodeJobId } from '../model/task-id.ts';
import type { NodeContext, NodeKind } from './node-kind.ts';
import { COMPENSATION_KIND } from './node-kinds.ts';
import { isFinal, type RunRecord, type RunStore, type Step, type StoredNode } from './run-store.ts';

/** What the sweep asks of the engine (the engine passes itself; the sweep does not import it). */
export interface SweptEngine {
  readonly store: RunStore;
  readonly nodes: NodeContext;
  kindOf(def: StoredNode): NodeKind | undefined;
  kick(runId: string): Promise<void>;
  dropRunJob(runId: string): Promise<void>;
}

/** A run the engine has not looked at for this long is reconciled by the sweep. */
export const SWEEP_AFTER_MS = 5000;
/** A queued node's work must be missing this long (two looks) before the sweep starts it again. */
const MISSING_GRACE_MS = 5000;
/** A run index entry without state older than this is a creation that was cut off. */
const ABANDONED_MS = 60_000;
const SWEEP_BATCH = 100;

export class WorkflowSweep {
  /** Job id -> when the sweep first found it missing (a move may be under way: look twice). */
  readonly #missing = new Map<string, number>();

  constructor(
    private readonly engine: SweptEngine,
    private readonly redis: RedisConnection,
    /** zset: active run id -> when the engine last looked at it. */
    private readonly activeKey: string,
    private readonly log: Logger,
  ) {}

  async run(now: number): Promise<void> {
    const stale = await this.redis.zrangebyscore(this.activeKey, '-inf', now - SWEEP_AFTER_MS, 'WITHSCORES', 'LIMIT', 0, SWEEP_BATCH);
    for (let i = 0; i < stale.length; i += 2) {
      const runId = stale[i]!;
      await this.redis.zadd(this.activeKey, 'XX', now, runId);
      try {
        await this.#reconcile(runId, Number(stale[i + 1]), now);
      } catch (err) {
        this.log.warn({ runId, err: err instanceof Error ? err.message : String(err) }, 'could not reconcile a workflow run');
      }
    }
  }

  async #reconcile(runId: string, since: number, now: number): Promise<void> {
    const rec = await this.engine.store.record(runId);
    if (!rec) {
      if (now - since > ABANDONED_MS) {
        await this.engine.dropRunJob(runId);
        await this.redis.zrem(this.activeKey, runId);
      }
      return;
    }
    const step: Step | undefined = rec.meta.state === 'compensating' ? 'compensation' : isFinal(rec.meta.state) ? undefined : 'node';
    let quietUntil = Infinity;
    if (step) {
      const states = step === 'node' ? rec.states : rec.compensations;
      for (const [id, s] of states) if (s === 'queued') quietUntil = Math.min(quietUntil, await this.#repair(rec, id, step, now));
      // Only waiting nodes that say so (sleeps): look again when the first can change, not every few seconds.
      if (quietUntil !== Infinity && quietUntil > now + SWEEP_AFTER_MS && rec.states.size > 0 && ![...rec.states.values()].includes('ready')) {
        await this.redis.zadd(this.activeKey, 'XX', quietUntil - SWEEP_AFTER_MS, runId);
      }
    }
    await this.engine.kick(runId);
  }

  /** Repairs a queued node if its work ended unseen or went missing; returns until when it needs no look. */
  async #repair(rec: RunRecord, id: string, step: Step, now: number): Promise<number> {
    const runId = rec.meta.id;
    const kind = step === 'compensation' ? COMPENSATION_KIND : this.engine.kindOf(rec.nodes.get(id)!);
    const key = nodeJobId(runId, id, step === 'compensation');
    if (!kind) return now;
    const progress = await kind.inspect(this.engine.nodes, rec, id, step);
    if (progress.state === 'missing') {
      const first = this.#missing.get(key);
      if (first === undefined) {
        this.#missing.set(key, now);
        return now;
      }
      if (now - first < MISSING_GRACE_MS) return now;
      this.#missing.delete(key);
      if (rec.meta.state === 'running' || step === 'compensation') {
        this.log.warn({ runId, node: id, step }, 'a queued workflow node had not started (interrupted start); starting it again');
        await kind.restart(this.engine.nodes, rec, id, step);
      } else {
        await this.engine.store.settle(runId, step, id, 'skipped', '', {});
      }
      return now;
    }
    this.#missing.delete(key);
    if (progress.state === 'ended') await this.engine.store.settle(runId, step, id, progress.outcome, progress.payload, progress.info);
    return progress.state === 'running' ? (progress.quietUntil ?? now) : now;
  }
}
