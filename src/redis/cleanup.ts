/** Deletes every key under a prefix (SCAN + UNLINK in batches): what tests, benchmarks and examples clean up with. */
import { masters, type RedisConnection } from './connection.ts';

/** On a cluster every master is scanned, and keys are unlinked one slot at a time (a cluster refuses cross-slot UNLINK). */
export async function deleteKeysUnder(redis: RedisConnection, prefix: string): Promise<number> {
  let deleted = 0;
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (batch.length === 0) continue;
      if (node === redis) deleted += await node.unlink(...batch);
      else deleted += (await Promise.all(batch.map((k) => redis.unlink(k)))).reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return deleted;
}
