/** What Redis did between two points (INFO commandstats, INFO cpu), and cleanup of a bench prefix. */
import type { Redis } from 'ioredis';

export async function totalCommands(redis: Redis): Promise<number> {
  let total = 0;
  for (const calls of (await commandCalls(redis)).values()) total += calls;
  return total;
}

/** Calls so far of each command (commands run inside Lua scripts count too). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  return new Map([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** CPU seconds the Redis server has used (main thread and children, user + system). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_sys') + get('used_cpu_user');
}

/** Bytes the Redis server holds (INFO memory used_memory). */
export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1] ?? NaN);
}

export { deleteKeysUnder as deletePrefix } from '../src/index.ts';
