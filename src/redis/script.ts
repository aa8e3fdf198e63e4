/**
 * Lua scripts as TS modules (never read from disk at run time): EVALSHA, falling back to EVAL
 * once when the server does not have the script yet (after a restart or on a new cluster node).
 */
import { createHash } from 'node:crypto';
import type { RedisConnection } from './connection.ts';

export interface ScriptSource {
  /** Name for errors and logs, e.g. `breaker-record`. */
  name: string;
  /** How many of the arguments are keys (-1: as many as the caller passes); they must share one hash tag. */
  numberOfKeys: number;
  lua: string;
}

export interface Script<R> {
  readonly name: string;
  readonly sha: string;
  run(redis: RedisConnection, keys: readonly string[], args: readonly (string | number)[]): Promise<R>;
}

export function defineScript<R>(source: ScriptSource): Script<R> {
  const sha = createHash('sha1').update(source.lua).digest('hex');
  return {
    name: source.name,
    sha,
    async run(redis, keys, args) {
      if (source.numberOfKeys >= 0 && keys.length !== source.numberOfKeys) {
        throw new TypeError(`script ${source.name} takes ${source.numberOfKeys} keys, got ${keys.length}`);
      }
      try {
        return (await redis.evalsha(sha, keys.length, ...keys, ...args)) as R;
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return (await redis.eval(source.lua, keys.length, ...keys, ...args)) as R;
      }
    },
  };
}
