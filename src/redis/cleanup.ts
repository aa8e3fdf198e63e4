/** Deletes every key under a prefix (SCAN + UNLINK in batches): what tests, benchmarks and examples clean up with. */
import type { Redis } from 'ioredis';

export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (batch.length) deleted += await redis.unlink(...batch);
  } while (cursor !== '0');
  return deleted;
}
