/**
 * The schedule timer: every API process runs one, a DueLoop over the schedules' next ticks (it sleeps
 * until the earliest tick is due, at most a second, and claims the due ticks in one script, each for
 * one process for a lease); it fires each, and hands back the schedule's next tick. A fire
 * starts an ordinary task (routed now, like any other) or workflow run, whose id names the schedule
 * and the tick and whose idempotency key is the tick's. A process that dies mid-fire loses its claim
 * when the lease ends; another process claims the tick again, and its fire finds the first one's task
 * or run: each tick starts one, and a tick is only ever late, never dropped, while Redis keeps it
 * (AOF, appendfsync always). Between ticks it costs one ZRANGE a second per process.
 */
import type { Logger } from '../config/logger.ts';
import { DueLoop } from '../housekeeping/due-loop.ts';
import { isSwitchyardError } from '../model/errors.ts';
import { fireRunId, fireTaskId, MISFIRE_GRACE_MS, tickAfterFire, type ScheduleSpec } from '../model/schedule.ts';
import type { TaskProducer } from '../task/producer.ts';
import type { WorkflowRuns } from '../workflow/runs.ts';
import type { ClaimedTick, FireRecord, ScheduleStore } from './schedule-store.ts';

export interface ScheduleTimerOptions {
  store: ScheduleStore;
  producer: TaskProducer;
  runs: WorkflowRuns;
  /** How long a claimed tick is this process's: another takes it over once this passes without an answer. */
  leaseMs: number;
  log: Logger;
  /** Told of every tick handled, and how late (ms after its tick) it was handled. */
  onFire?: (fire: FireRecord, delayMs: number) => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class ScheduleTimer {
  readonly #o: ScheduleTimerOptions;
  readonly #loop: DueLoop<ClaimedTick>;

  constructor(o: ScheduleTimerOptions) {
    this.#o = o;
    this.#loop = new DueLoop({ name: 'schedule timer', source: o.store, handle: (c) => this.#fire(c), leaseMs: o.leaseMs, log: o.log });
  }

  start(): void {
    this.#loop.start();
  }

  /** Looks for due ticks now (a schedule was just written). */
  kick(): void {
    this.#loop.kick();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** One claimed tick: fired (or skipped), recorded, and the next tick handed back. A Redis error leaves the claim to expire: the tick is fired again. */
  async #fire(c: ClaimedTick): Promise<void> {
    const spec = await this.#o.store.get(c.id);
    if (!spec || spec.paused) {
      await this.#o.store.done(c, undefined); // deleted or paused while due: nothing starts
      return;
    }
    const now = Date.now();
    const fire = await this.#outcome(spec, c.tick, now);
    await this.#o.store.recordFire(c.id, fire);
    this.#o.onFire?.(fire, fire.at - c.tick);
    if (fire.outcome !== 'fired') this.#o.log.warn({ schedule: c.id, tick: iso(c.tick), reason: fire.reason }, `schedule tick ${fire.outcome}`);
    await this.#o.store.done(c, tickAfterFire(spec, c.tick, now));
  }

  async #outcome(spec: ScheduleSpec, tick: number, now: number): Promise<FireRecord> {
    const late = now - tick;
    if (spec.misfire === 'skip' && late > MISFIRE_GRACE_MS) {
      return { tick, at: now, outcome: 'skipped', reason: `missed: found ${Math.round(late / 1000)} s after its time (misfire: skip)` };
    }
    try {
      return { tick, at: Date.now(), outcome: 'fired', id: await this.#start(spec, tick) };
    } catch (err) {
      // What it starts no longer validates (its type was removed or changed): firing again cannot help.
      if (isSwitchyardError(err) && (err.code === 'VALIDATION_FAILED' || err.code === 'UNKNOWN_AGENT_TYPE')) {
        return { tick, at: Date.now(), outcome: 'failed', reason: err.message };
      }
      throw err; // Redis, a full backlog: the claim expires and the tick is fired again
    }
  }

  /** Starts the tick's task or run (or finds the one an earlier try of this tick started); returns its id. */
  async #start(s: ScheduleSpec, tick: number): Promise<string> {
    const idempotencyKey = `sched:${s.id}:${tick}`;
    if (s.task) {
      const { task } = await this.#o.producer.enqueue({ ...s.task, idempotencyKey }, fireTaskId(s.task.type, s.id, tick));
      return task.id;
    }
    const { run } = await this.#o.runs.start({ ...s.workflow, idempotencyKey }, fireRunId(s.id, tick));
    return run.id;
  }
}
