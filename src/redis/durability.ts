/**
 * What Switchyard needs from the Redis it runs on, checked at start: `noeviction` (with any other
 * policy a full Redis silently drops jobs), persistence (without it a Redis restart loses every
 * acknowledged task) and an AOF fsynced before each reply (`everysec` can lose the last moment). Warns loudly rather than refusing to start: managed Redis services often hide
 * CONFIG, and a test Redis may be ephemeral on purpose.
 */
import { masters, type RedisConnection } from './connection.ts';

export interface DurabilityReport {
  /** Problems found, each a sentence that says what to change; empty when all is well or unknown. */
  problems: string[];
  /** false when the server does not allow CONFIG GET (managed services): nothing could be checked. */
  checked: boolean;
}

/** Checks the one Redis, or every master of a cluster (each problem then names its node). */
export async function checkDurability(redis: RedisConnection): Promise<DurabilityReport> {
  const nodes = masters(redis);
  if (nodes.length === 1 && nodes[0] === redis) return checkServer(redis);
  const reports = await Promise.all(nodes.map(async (n) => ({ node: `${n.options.host}:${n.options.port}`, report: await checkServer(n) })));
  const problems = new Map<string, string[]>();
  for (const { node, report } of reports) for (const p of report.problems) problems.set(p, [...(problems.get(p) ?? []), node]);
  return {
    problems: [...problems].map(([p, on]) => `${p} (cluster node${on.length > 1 ? 's' : ''} ${on.join(', ')})`),
    checked: reports.every((r) => r.report.checked),
  };
}

async function checkServer(redis: RedisConnection): Promise<DurabilityReport> {
  let policy: string | undefined;
  let aof: string | undefined;
  let save: string | undefined;
  let fsync: string | undefined;
  try {
    [, policy] = (await redis.call('CONFIG', 'GET', 'maxmemory-policy')) as [string, string];
    [, aof] = (await redis.call('CONFIG', 'GET', 'appendonly')) as [string, string];
    [, save] = (await redis.call('CONFIG', 'GET', 'save')) as [string, string];
    [, fsync] = (await redis.call('CONFIG', 'GET', 'appendfsync')) as [string, string];
  } catch {
    return { problems: [], checked: false };
  }
  const problems: string[] = [];
  if (policy !== 'noeviction') {
    problems.push(`Redis maxmemory-policy is ${policy}: when memory runs out Redis evicts keys, and queued tasks vanish; set maxmemory-policy noeviction (then a full Redis refuses writes and the API answers 503)`);
  }
  if (aof !== 'yes' && !save) {
    problems.push('Redis has no persistence (appendonly no, no save points): a Redis restart loses every acknowledged task; set appendonly yes');
  } else if (aof === 'yes' && fsync !== 'always') {
    problems.push(`Redis appendfsync is ${fsync}: a Redis crash can silently lose tasks acknowledged in its last moments (docs/reliability.md); set appendfsync always unless that is a trade you chose`);
  }
  return { problems, checked: true };
}
