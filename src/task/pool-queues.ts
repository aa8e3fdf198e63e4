/**
 * The BullMQ Queue of every pool this process has seen, sharing one connection, plus the
 * catalogue in Redis of every pool queue ever used, so that readers in other processes (task
 * lookups, Bull Board) find a new pool without a restart.
 */
import { EventEmitter } from 'node:events';
import { Queue, type Job } from 'bullmq';
import type { RedisConnection } from '../redis/connection.ts';
import { keys as keyBuilder } from '../redis/keys.ts';
import { parseQueueName, queueName, type PoolRef } from '../model/names.ts';

export async function registerPoolQueue(redis: RedisConnection, prefix: string, ref: PoolRef): Promise<void> {
  await redis.sadd(keyBuilder(prefix).queueCatalogue, queueName(ref));
}

export class PoolQueues extends EventEmitter<{ added: [Queue, PoolRef] }> {
  readonly #queues = new Map<string, { queue: Queue; ref: PoolRef; registered?: Promise<void> }>();
  readonly #redis: RedisConnection;
  readonly #prefix: string;

  constructor(redis: RedisConnection, prefix: string) {
    super();
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #entry(ref: PoolRef) {
    const name = queueName(ref);
    let entry = this.#queues.get(name);
    if (!entry) {
      const queue = new Queue(name, { connection: this.#redis, prefix: this.#prefix });
      queue.on('error', () => {}); // connection errors surface on the calls that hit them
      entry = { queue, ref };
      this.#queues.set(name, entry);
      this.emit('added', queue, ref);
    }
    return entry;
  }

  /** The queue of a pool, recorded in the catalogue the first time this process writes to it. */
  async forWriting(ref: PoolRef): Promise<Queue> {
    const entry = this.#entry(ref);
    entry.registered ??= registerPoolQueue(this.#redis, this.#prefix, ref).catch((err: unknown) => {
      entry.registered = undefined;
      throw err;
    });
    await entry.registered;
    return entry.queue;
  }

  /** The Redis hash of a task's job (BullMQ's layout: `<prefix>:<queue>:<id>`). */
  jobKey(ref: PoolRef, id: string): string {
    return `${this.#prefix}:${queueName(ref)}:${id}`;
  }

  get redis(): RedisConnection {
    return this.#redis;
  }

  get prefix(): string {
    return this.#prefix;
  }

  get(ref: PoolRef): Queue {
    return this.#entry(ref).queue;
  }

  /**
   * A task's job wherever it is among its type's pool queues, looking in `pool` first; pools this
   * process has not seen yet are looked up in the catalogue when it is nowhere else. During a move
   * a task briefly exists in two queues: the copy not yet finished is the live one.
   */
  async find(type: string, id: string, pool?: string): Promise<Job | undefined> {
    if (pool) {
      const job = await this.get({ type, pool }).getJob(id);
      if (job) return job;
    }
    // Not found: look again, after learning of new pools. A task that moved between pools (added to
    // its new queue, then removed from the old one) can slip between the reads of one pass, the more
    // so on a cluster, where the queues are on different shards; a second pass, started after the
    // first ended, finds it in its new queue.
    const first = await this.#search(type, id);
    if (first) return first;
    await this.refresh();
    return this.#search(type, id);
  }

  async #search(type: string, id: string): Promise<Job | undefined> {
    const found = (await Promise.all(this.ofType(type).map((q) => q.getJob(id)))).filter((j): j is Job => j !== undefined);
    return found.find((j) => !j.finishedOn) ?? found[0];
  }

  /** Queues known to this process for a type (call refresh() to learn of pools others created). */
  ofType(type: string): Queue[] {
    return [...this.#queues.values()].filter((e) => e.ref.type === type).map((e) => e.queue);
  }

  all(): Array<{ queue: Queue; ref: PoolRef }> {
    return [...this.#queues.values()].map(({ queue, ref }) => ({ queue, ref }));
  }

  /** Reads the catalogue from Redis and opens queues for pools not seen yet; returns how many were new. */
  async refresh(): Promise<number> {
    const names = await this.#redis.smembers(keyBuilder(this.#prefix).queueCatalogue);
    let added = 0;
    for (const name of names) {
      const ref = parseQueueName(name);
      if (ref && !this.#queues.has(name)) {
        this.#entry(ref);
        added++;
      }
    }
    return added;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((e) => e.queue.close()));
    this.#queues.clear();
  }
}
