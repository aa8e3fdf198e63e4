/**
 * A Redis lock with a TTL that one process holds at a time and renews while alive; when the holder
 * dies, the lock expires and another process takes it (no fencing: holders must be idempotent).
 */
import type { RedisConnection } from './connection.ts';
import { scripts } from './scripts.ts';

export class LeaseLock {
  constructor(
    private readonly redis: RedisConnection,
    readonly key: string,
    readonly owner: string,
    readonly ttlMs: number,
  ) {}

  /** Takes the lock if free, renews it if held by us. True while we hold it. */
  async acquire(): Promise<boolean> {
    return (await scripts.lockAcquire.run(this.redis, [this.key], [this.owner, this.ttlMs])) === 1;
  }

  async release(): Promise<boolean> {
    return (await scripts.lockRelease.run(this.redis, [this.key], [this.owner])) === 1;
  }

  async holder(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
