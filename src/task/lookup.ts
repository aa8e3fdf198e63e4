/** Finds a task by id: its type comes from the id, then each pool queue of that type is asked. */
import type { Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import { withRedis } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { parseQueueName, poolLabel } from '../model/names.ts';
import type { Registry } from '../registry/registry.ts';
import { poolEligibility } from '../model/eligibility.ts';
import type { Catalogue } from '../model/catalogue.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { typeOfTaskId } from '../model/task-id.ts';
import type { PoolQueues } from './pool-queues.ts';
import { taskState, viewOf, type TaskView } from './view.ts';

/** The type of a task whose id does not start with it (a workflow node's job); undefined if unknown. */
export type TypeResolver = (id: string) => Promise<string | undefined>;

export class TaskLookup {
  constructor(
    private readonly queues: PoolQueues,
    private readonly catalogue: Catalogue,
    private readonly redis: RedisConnection,
    private readonly prefix: string,
    private readonly registry?: Registry,
    private readonly resolveType?: TypeResolver,
  ) {}

  async find(id: string): Promise<TaskView | undefined> {
    return withRedis(this.redis, async () => {
      const type = typeOfTaskId(id) ?? (await this.resolveType?.(id));
      if (!type || !this.catalogue.find(type)) return undefined;
      return this.#find(type, id);
    });
  }

  async #find(type: string, id: string): Promise<TaskView | undefined> {
    let job: Job<TaskEnvelope> | undefined;
    let bullState: Awaited<ReturnType<Job['getState']>> = 'unknown';
    // The hash and the state are two reads, and a task can start, fail or finish between them (a view
    // saying `active` with the first attempt's error, issue 20). A hash read between two reads of the
    // same state belongs to that state. A task moving to another pool (added there, then removed here)
    // can be read here and be gone by the time its state is asked ('unknown'): look for it again.
    for (let pass = 0; pass < 4; pass++) {
      const found = (await this.queues.find(type, id)) as Job<TaskEnvelope> | undefined;
      if (!found) return this.#tombstone(type, id);
      const before = await found.getState();
      if (before === 'unknown') continue;
      job = ((await this.queues.get(parseQueueName(found.queueName)!).getJob(id)) as Job<TaskEnvelope> | undefined) ?? found;
      bullState = await job.getState();
      if (bullState === before) break;
    }
    if (!job || bullState === 'unknown') return undefined;
    const state = taskState(job, bullState);
    if (!state) return undefined;
    const view = viewOf(job, state);
    if (state === 'parked') view.note = view.routing.reason;
    if ((state === 'delayed' || state === 'retrying') && job.data.concurrency) await this.#noteHeld(view, job);
    if (this.registry && (state === 'waiting' || state === 'delayed' || state === 'retrying')) {
      const ref = parseQueueName(job.queueName)!;
      const { eligible, reasons } = poolEligibility(await this.registry.list({ type: ref.type, pool: ref.pool }));
      if (!eligible) view.note = `pool ${poolLabel(ref)} cannot take it now (${reasons.join('; ')}): it waits until an agent there is healthy`;
    }
    return view;
  }

  /** A task held by its concurrency key's limit waits for a slot, not for a time (key-slots.ts). */
  async #noteHeld(view: TaskView, job: Job<TaskEnvelope>): Promise<void> {
    const key = job.data.concurrency!.key;
    const ref = parseQueueName(job.queueName)!;
    const slots = keys(this.prefix).keySlots(ref.type);
    const held = await this.redis.zscore(slots.held(key), slots.heldMember(ref.pool, job.id!));
    if (held === null) return;
    delete view.runAt;
    view.note = `concurrency key ${JSON.stringify(key)} is at its limit: it runs when one of the key's running tasks ends`;
  }

  /** A task cancelled before it ran leaves only this (see cancel.ts). */
  async #tombstone(type: string, id: string): Promise<TaskView | undefined> {
    const json = await this.redis.get(keys(this.prefix).cancelled(type, id));
    return json ? (JSON.parse(json) as TaskView) : undefined;
  }
}
