/**
 * Fair order between concurrency keys on a pool queue: each keyed task gets a tag from its key's turn
 * (lua/fair-tag.lua, start-time fair queuing) and runs with it as its BullMQ priority, so a key that
 * arrives behind another key's backlog takes turns with it. One script call per queue and write.
 */
import type { RedisConnection } from '../redis/connection.ts';
import { keys as keyBuilder } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import { PRIORITY_LIMIT } from '../model/task-request.ts';

/** The head's tag past which the queue's tags are lowered (half of BullMQ's priority range). */
export const REBASE_ABOVE = Math.floor(PRIORITY_LIMIT / 2);

export class FairOrder {
  readonly #k: ReturnType<typeof keyBuilder>;

  constructor(
    private readonly redis: RedisConnection,
    prefix: string,
    private readonly rebaseAbove = REBASE_ABOVE,
  ) {
    this.#k = keyBuilder(prefix);
  }

  /** The tags (priorities) of tasks about to be written to `queue`, one per concurrency key given, in order. */
  async tags(queue: string, concurrencyKeys: readonly string[]): Promise<number[]> {
    const q = (name: string) => `${this.#k.prefix}:${queue}:${name}`;
    const tags = await scripts.fairTag.run(this.redis, [q('prioritized'), q('delayed'), this.#k.fairOrder(queue)], [`${this.#k.prefix}:${queue}:`, this.rebaseAbove, ...concurrencyKeys]);
    return tags.map(Number);
  }
}
