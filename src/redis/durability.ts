/**
 * What Switchyard needs from the Redis it runs on, checked at start: `noeviction` (with any other
 * policy a full Redis silently drops jobs) and persistence (without it a Redis restart loses every
 * acknowledged task). Warns loudly rather than refusing to start: managed Redis services often hide
 * CONFIG, and a test Redis may be ephemeral on purpose.
 */
import type { Redis } from 'ioredis';

export interface DurabilityReport {
  /** Problems found, each a sentence that says what to change; empty when all is well or unknown. */
  problems: string[];
  /** false when the server does not allow CONFIG GET (managed services): nothing could be checked. */
  checked: boolean;
}

export async function checkDurability(redis: Redis): Promise<DurabilityReport> {
  let policy: string | undefined;
  let aof: string | undefined;
  let save: string | undefined;
  try {
    [, policy] = (await redis.call('CONFIG', 'GET', 'maxmemory-policy')) as [string, string];
    [, aof] = (await redis.call('CONFIG', 'GET', 'appendonly')) as [string, string];
    [, save] = (await redis.call('CONFIG', 'GET', 'save')) as [string, string];
  } catch {
    return { problems: [], checked: false };
  }
  const problems: string[] = [];
  if (policy !== 'noeviction') {
    problems.push(`Redis maxmemory-policy is ${policy}: when memory runs out Redis evicts keys, and queued tasks vanish; set maxmemory-policy noeviction (then a full Redis refuses writes and the API answers 503)`);
  }
  if (aof !== 'yes' && !save) {
    problems.push('Redis has no persistence (appendonly no, no save points): a Redis restart loses every acknowledged task; set appendonly yes');
  }
  return { problems, checked: true };
}
