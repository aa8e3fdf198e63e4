/**
 * Real Redis for tests. Each test file gets its own key prefix; its keys are deleted after the
 * file passes and kept (with the prefix printed) when a test failed, to look at what went wrong.
 * Never FLUSHALL: the Redis may be shared.
 */
import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import { deleteKeysUnder as deleteKeys } from '../../src/redis/cleanup.ts';
import { createRedis, masters, type RedisConnection } from '../../src/redis/connection.ts';

/** A redis:// URL, or a redis+cluster:// one when the suite runs on a cluster (vitest.cluster.config.ts). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A connection to the tests' Redis (or cluster) that waits through outages instead of failing. */
export const connectRedis = (): RedisConnection => createRedis(REDIS_URL, 'blocking', 'switchyard-test');

/** KEYS on the one Redis, or on every master of a cluster (a cluster's KEYS sees one node). */
export async function keysMatching(redis: RedisConnection, pattern: string): Promise<string[]> {
  return (await Promise.all(masters(redis).map((n) => n.keys(pattern)))).flat();
}

export function uniquePrefix(tag: string): string {
  const slug = tag.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 14);
  return `t-${slug}-${randomBytes(4).toString('hex')}`;
}

export { deleteKeys };

export type TaskLike = { result?: { state?: string }; tasks?: TaskLike[] };
/** True when a test of the suite (a file's afterAll context) failed. */
export const anyFailed = (t: TaskLike): boolean => t.result?.state === 'fail' || (t.tasks ?? []).some(anyFailed);

/** What must stop before this file's keys are deleted (processes that could write them again: tests/support/processes.ts). */
const beforeCleanup: Array<() => Promise<unknown>> = [];
export const beforeKeysDeleted = (step: () => Promise<unknown>): void => void beforeCleanup.push(step);

/**
 * A prefix and a client for this test file; cleanup is registered with afterAll. `sub(name)` gives a
 * further prefix of this file's (`<prefix>-<name>`, for a fleet of its own), cleaned up with it.
 */
export function useRedisPrefix(tag: string): { prefix: string; redis: RedisConnection; sub(name: string): string } {
  const prefix = uniquePrefix(tag);
  const redis = connectRedis();
  const prefixes = [prefix];
  afterAll(async ({}, suite) => {
    if (anyFailed(suite as TaskLike)) {
      console.warn(`[tests] a test failed: keeping Redis keys under ${prefixes.map((p) => `${p}:*`).join(', ')} for inspection`);
    } else {
      for (const step of beforeCleanup) await step();
      for (const p of prefixes) await deleteKeys(redis, p);
    }
    await redis.quit();
  });
  const sub = (name: string) => {
    const p = `${prefix}-${name}`;
    if (!prefixes.includes(p)) prefixes.push(p);
    return p;
  };
  return { prefix, redis, sub };
}
