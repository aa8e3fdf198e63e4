/**
 * Cancelling a task (DELETE /v1/tasks/:id). A task that has not started is removed at once and
 * leaves a tombstone, so GET still answers `cancelled`; a running one is aborted by the agent that
 * holds it (its handler's signal fires, the attempt ends as `cancelled`), told over pub/sub.
 */
import type { Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import { SwitchyardError } from '../model/errors.ts';
import type { EventLog } from '../events/event-log.ts';
import type { CallbackOutbox } from '../callbacks/callback-outbox.ts';
import { keys } from '../redis/keys.ts';
import { queueName } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { TaskLookup } from './lookup.ts';
import type { PoolQueues } from './pool-queues.ts';
import type { TaskView } from './view.ts';

/** How long a running task's cancel is kept for HTTP workers to hear of. */
const CANCEL_KEPT_S = 3600;

export interface CancelMessage {
  kind: 'cancel';
  taskId: string;
  reason: string;
}

export class TaskCanceller {
  readonly #k: ReturnType<typeof keys>;

  constructor(
    private readonly redis: RedisConnection,
    prefix: string,
    private readonly queues: PoolQueues,
    private readonly lookup: TaskLookup,
    private readonly keepS: number,
    private readonly events?: EventLog,
    private readonly callbacks?: CallbackOutbox,
  ) {
    this.#k = keys(prefix);
  }

  /** Returns the task's view after the request: `cancelled`, or still `active` while its agent aborts it. */
  async cancel(id: string, reason = 'cancelled on request', waitMs = 3000): Promise<TaskView> {
    const view = await this.lookup.find(id);
    if (!view) throw new SwitchyardError('TASK_NOT_FOUND', `no task with id ${JSON.stringify(id)}`);
    if (view.state === 'completed' || view.state === 'dead' || view.state === 'cancelled') {
      throw new SwitchyardError('TASK_FINISHED', `task ${id} is already ${view.state}; there is nothing to cancel`);
    }
    if (view.state !== 'active') {
      const job = (await this.queues.get({ type: view.type, pool: view.pool }).getJob(id)) as Job<TaskEnvelope> | undefined;
      try {
        if (job) await job.remove();
        const cancelled: TaskView = { ...view, state: 'cancelled', note: reason, finishedAt: new Date().toISOString() };
        await this.redis.set(this.#k.cancelled(view.type, id), JSON.stringify(cancelled), 'EX', this.keepS);
        this.events?.append({ kind: 'task', task: id, type: view.type, pool: view.pool, state: 'cancelled', at: Date.now() });
        const url = job?.data.callback?.url;
        if (url) await this.callbacks?.add({ kind: 'task', id, state: 'cancelled', url });
        return cancelled;
      } catch {
        // It started in the meantime (its job is locked): abort it like any running task.
      }
    }
    const message: CancelMessage = { kind: 'cancel', taskId: id, reason };
    // Kept for an HTTP worker, which hears of it at its next heartbeat or extend (an hour is past any lease).
    await this.redis.set(this.#k.cancelAsked(queueName({ type: view.type, pool: view.pool }), id), reason, 'EX', CANCEL_KEPT_S);
    await this.redis.publish(this.#k.taskEvents, JSON.stringify(message));
    const deadline = Date.now() + waitMs;
    for (;;) {
      const now = await this.lookup.find(id);
      if (!now || now.state !== 'active' || Date.now() > deadline) return now ?? view;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export const isCancelMessage = (m: unknown): m is CancelMessage =>
  typeof m === 'object' && m !== null && (m as CancelMessage).kind === 'cancel' && typeof (m as CancelMessage).taskId === 'string';

