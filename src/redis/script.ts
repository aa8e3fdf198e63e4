/**
 * Lua scripts: sources in ./lua/<name>.lua (KEYS and ARGV in their header comment; shared code pulled
 * in with `--- @include "<name>"`, as BullMQ does, or `--- @include "bullmq:includes/<name>"` for one of
 * the installed BullMQ's own Lua functions), read once when this module loads; run with
 * EVALSHA, falling back to EVAL once when the server does not have the script yet (after a restart
 * or on a new cluster node).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

const INCLUDE = /^--- @include "((?:bullmq:)?[A-Za-z0-9/-]+)"$/m;
const BULLMQ = 'bullmq:';

/** Where the installed BullMQ keeps its Lua sources (`commands/`, with `includes/`). */
export const BULLMQ_COMMANDS = join(dirname(createRequire(import.meta.url).resolve('bullmq/package.json')), 'dist', 'esm', 'commands');

/** The text of one source: ours (./lua/), generated, or BullMQ's (its own includes renamed to the `bullmq:` form). */
function sourceText(name: string, generated: Readonly<Record<string, string>>): string {
  if (!name.startsWith(BULLMQ)) return generated[name] ?? readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
  const path = name.slice(BULLMQ.length);
  const text = readFileSync(join(BULLMQ_COMMANDS, `${path}.lua`), 'utf8');
  // BullMQ's includes name a file beside the including one (includes/ include each other by bare name).
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/') + 1) : '';
  return text.replace(/^--- @include "([A-Za-z0-9/]+)"$/gm, (_, inc: string) => `--- @include "${BULLMQ}${dir}${inc}"`);
}

/**
 * The source of ./lua/<name>.lua with its includes expanded (each at most once). An include named in
 * `generated` is that text instead of a file (Lua written from TypeScript, e.g. the workflow states);
 * one named `bullmq:<path>` is BullMQ's `commands/<path>.lua`, as installed (tests/unit/bullmq-pin.test.ts
 * pins the version and the files). `included` collects every name expanded.
 */
export function luaSource(name: string, generated: Readonly<Record<string, string>> = {}, included = new Set<string>()): string {
  included.add(name);
  let text = sourceText(name, generated);
  for (let m = INCLUDE.exec(text); m; m = INCLUDE.exec(text)) {
    const lib = m[1]!;
    const source = included.has(lib) ? '' : luaSource(lib, generated, included);
    text = text.replace(m[0], () => source); // a function: Lua's `$'` and `$&` are not replacement patterns
  }
  return text;
}
