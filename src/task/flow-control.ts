/**
 * Throttle and debounce on a key, at enqueue. A key's window is one Redis key in its type's slot
 * (`throttle:{<type>}:<key>`, `debounce:{<type>}:<key>`) naming the task it holds, so requests routed
 * to different pools still meet:
 * - throttle: the first request of a window enqueues; the others within `windowMs` get that task back;
 * - debounce: the first request enqueues a task delayed by `windowMs`; each later one within the window
 *   gives that task its payload and options and pushes it back to `windowMs` from now (one script on
 *   the task's pool queue, compare-and-set: a task that started meanwhile keeps what it runs with, and
 *   the request starts a new task and window instead). The task runs once, for the last request.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisConnection } from '../redis/connection.ts';
import { keys as keyBuilder } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import { parseQueueName } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { TaskRequest } from '../model/task-request.ts';
import type { PoolQueues } from './pool-queues.ts';
import type { TaskSummary } from './view.ts';

/** A throttled or debounced task's key and window, as the producer carries it. */
export interface FlowKey {
  kind: 'throttle' | 'debounce';
  key: string;
  windowMs: number;
}

/** Enqueue it, or answer with the task the key's window holds. */
export type FlowVerdict = { add: true } | { existing: TaskSummary; how: 'throttled' | 'debounced' };

/** What the producer hands over of a task. */
export interface FlowTask {
  id: string;
  queue: string;
  type: { name: string };
  envelope: TaskEnvelope;
  flow: FlowKey;
}

/** How long a request waits for the task of a window that another request is still adding. */
const ADDING_WAIT_MS = 1000;
const ADDING_POLL_MS = 20;

export const flowKeyOf = (req: Pick<TaskRequest, 'throttle' | 'debounce'>): FlowKey | undefined =>
  req.throttle ? { kind: 'throttle', ...req.throttle } : req.debounce ? { kind: 'debounce', ...req.debounce } : undefined;

export class FlowControl {
  readonly #k: ReturnType<typeof keyBuilder>;

  constructor(
    private readonly redis: RedisConnection,
    prefix: string,
    private readonly queues: PoolQueues,
    /** The task a window names, wherever it is now (undefined: not there yet, or no longer kept). */
    private readonly find: (queue: string, id: string) => Promise<TaskSummary | undefined>,
  ) {
    this.#k = keyBuilder(prefix);
  }

  admit(t: FlowTask): Promise<FlowVerdict> {
    return t.flow.kind === 'throttle' ? this.#throttle(t) : this.#debounce(t);
  }

  async #throttle(t: FlowTask): Promise<FlowVerdict> {
    const key = this.#k.throttle(t.type.name, t.flow.key);
    const previous = (await this.redis.call('SET', key, `${t.queue} ${t.id}`, 'NX', 'GET', 'PX', String(t.flow.windowMs))) as string | null;
    if (previous === null) return { add: true };
    const [queue, id] = previous.split(' ') as [string, string];
    for (let waited = 0; ; waited += ADDING_POLL_MS) {
      const existing = await this.find(queue, id);
      if (existing) return { existing, how: 'throttled' };
      if (waited >= ADDING_WAIT_MS) break;
      await sleep(ADDING_POLL_MS);
    }
    // The window's task is gone (finished and no longer kept), or its request died before adding it:
    // the window still holds, and this request gets that task's id.
    const pool = parseQueueName(queue)?.pool ?? '';
    return { existing: { id, type: t.type.name, pool, state: 'completed', routing: { strategy: 'fixed', pool, candidates: [pool], reason: 'throttled: the task of this window is no longer kept' } }, how: 'throttled' };
  }

  async #debounce(t: FlowTask): Promise<FlowVerdict> {
    const key = this.#k.debounce(t.type.name, t.flow.key);
    const value = `${t.queue} ${t.id}`;
    const previous = (await this.redis.call('SET', key, value, 'NX', 'GET', 'PX', String(t.flow.windowMs))) as string | null;
    if (previous === null) return { add: true };
    const [queue, id] = previous.split(' ') as [string, string];
    for (let waited = 0; waited <= ADDING_WAIT_MS; waited += ADDING_POLL_MS) {
      const replaced = await this.#replace(t, queue, id);
      if (replaced === 1) {
        await this.redis.pexpire(key, t.flow.windowMs); // the window restarts with each request
        const existing = await this.find(queue, id);
        if (existing) return { existing, how: 'debounced' };
        break;
      }
      if (replaced === -3) break;
      await sleep(ADDING_POLL_MS); // -1: the window's first request is still adding its task
    }
    // That task started (or never came): this request starts a new task and a new window.
    await this.redis.set(key, value, 'PX', t.flow.windowMs);
    return { add: true };
  }

  /** Gives the window's delayed task this request's payload and options, due `windowMs` from now. */
  async #replace(t: FlowTask, queue: string, id: string): Promise<number> {
    const ref = parseQueueName(queue);
    if (!ref) return -3;
    const jobKey = this.queues.jobKey(ref, id);
    const [data, timestamp] = await this.redis.hmget(jobKey, 'data', 'timestamp');
    if (data === null || data === undefined) return -1;
    const old = JSON.parse(data) as TaskEnvelope;
    // It stays where it was routed: its routing is kept, the rest is this request's.
    const next: TaskEnvelope = { ...t.envelope };
    if (old.routing) next.routing = old.routing;
    else delete next.routing;
    if (old.route) next.route = old.route;
    else delete next.route;
    const due = Date.now() + t.flow.windowMs;
    const q = this.queues.get(ref);
    return scripts.debounceReplace.run(this.redis, [q.keys.delayed!, jobKey, q.keys.marker!], [id, data, JSON.stringify(next), due, due - Number(timestamp ?? 0)]);
  }
}
