/**
 * An agent's side of map nodes (src/workflow/map-node.ts): when it settles an item of a map, the slot
 * the item frees goes to the map's next item at once. The settle script starts that item and hands
 * back its payload, and the agent adds it as a task to its own pool's queue, with the options of the
 * item it just ran: one round trip from an item's end to the next item's start, and no engine in
 * between (the engine starts a map's first items, and the sweep re-adds an item whose add was lost).
 * The agent also marks the run as moving in the sweep's index (at most every few seconds per run),
 * since the engine does not see these items.
 */
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { itemJobId } from '../model/task-id.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import type { Outcome, RunStore } from '../workflow/run-store.ts';

/** How often an agent marks a run whose items it settles as moving (the sweep looks at runs still for 5 s). */
const TOUCH_MS = 2000;

export class MapItemRunner {
  readonly #queue: Queue<TaskEnvelope>;
  readonly #active: string;
  readonly #touched = new Map<string, number>();

  constructor(
    private readonly runs: RunStore,
    private readonly redis: RedisConnection,
    prefix: string,
    /** The agent's own pool queue. */
    queue: string,
  ) {
    this.#queue = new Queue<TaskEnvelope>(queue, { connection: redis, prefix });
    this.#queue.on('error', () => undefined);
    this.#active = keys(prefix).workflow.active;
  }

  /** Settles item `index` of map `node` (ran as `job`), then adds the items started in its place. */
  async settled(job: Job<TaskEnvelope>, runId: string, node: string, index: number, outcome: Outcome, payload: string): Promise<void> {
    const { next } = await this.runs.settleItem(runId, node, index, outcome, payload);
    this.#touch(runId);
    if (!next) return;
    const opts: JobsOptions = {
      attempts: job.opts.attempts,
      backoff: job.opts.backoff,
      ...(job.opts.priority ? { priority: job.opts.priority } : {}),
      ...(job.opts.removeOnComplete !== undefined ? { removeOnComplete: job.opts.removeOnComplete } : {}),
    };
    await this.#queue.addBulk(
      next.payloads.map((p, i) => ({
        name: job.name,
        data: { ...job.data, payload: JSON.parse(p) as unknown, workflow: { run: runId, node, item: next.first + i } },
        opts: { ...opts, jobId: itemJobId(runId, node, next.first + i) },
      })),
    );
  }

  #touch(runId: string): void {
    const now = Date.now();
    if (now - (this.#touched.get(runId) ?? 0) < TOUCH_MS) return;
    if (this.#touched.size > 1000) for (const [id, t] of this.#touched) if (now - t > TOUCH_MS) this.#touched.delete(id);
    this.#touched.set(runId, now);
    void this.redis.zadd(this.#active, 'XX', now, runId).catch(() => undefined);
  }

  close(): Promise<void> {
    return this.#queue.close();
  }
}
