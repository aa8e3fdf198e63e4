/**
 * Lua scripts: sources in ./lua/<name>.lua (KEYS and ARGV in their header comment; shared code pulled
 * in with `--- @include "<name>"`, as BullMQ does), read once when this module loads; run with
 * EVALSHA, falling back to EVAL once when the server does not have the script yet (after a restart
 * or on a new cluster node).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

const INCLUDE = /^--- @include "([a-z0-9-]+)"$/m;

/**
 * The source of ./lua/<name>.lua with its includes expanded (each at most once). An include named in
 * `generated` is that text instead of a file (Lua written from TypeScript, e.g. the workflow states).
 */
export function luaSource(name: string, generated: Readonly<Record<string, string>> = {}, included = new Set<string>()): string {
  included.add(name);
  let text = generated[name] ?? readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
  for (let m = INCLUDE.exec(text); m; m = INCLUDE.exec(text)) {
    const lib = m[1]!;
    const source = included.has(lib) ? '' : luaSource(lib, generated, included);
    text = text.replace(m[0], () => source); // a function: Lua's `$'` and `$&` are not replacement patterns
  }
  return text;
}
