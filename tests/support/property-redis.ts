/**
 * fc.scheduler over a real Redis, for the property tests: every command the code under test sends
 * through a wrapped connection waits until the scheduler releases it, then runs alone. Redis runs
 * each command and Lua script atomically, so releasing them one at a time in every order the
 * scheduler picks covers every order several processes' commands could reach Redis in, a failing
 * order replays from the seed, and `afterStep` can look at the whole state between two commands.
 * Only calls made through the returned proxy are scheduled, not ioredis's own (connect, ...).
 */
import { createHash } from 'node:crypto';
import type { Scheduler } from 'fast-check';
import type { RedisConnection } from '../../src/redis/connection.ts';

export interface Step {
  /** 1-based position in the order Redis ran the commands. */
  n: number;
  /** Which process sent it (the label given to `connection`). */
  who: string;
  command: string;
  args: readonly unknown[];
}

type Call = (...args: unknown[]) => unknown;

/** The Lua script a step ran (EVALSHA, or EVAL when the server lacked it): its SHA1, KEYS and ARGV. */
export function scriptCall(step: Step): { sha: string; keys: string[]; argv: string[] } | undefined {
  if (step.command !== 'evalsha' && step.command !== 'eval') return undefined;
  const [first, numKeys, ...rest] = step.args.map(String);
  const sha = step.command === 'eval' ? createHash('sha1').update(first!).digest('hex') : first!;
  return { sha, keys: rest.slice(0, Number(numKeys)), argv: rest.slice(Number(numKeys)) };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Interleaver {
  readonly steps: Step[] = [];
  #tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly s: Scheduler,
    /** Runs after each command, before the scheduler releases anything else. */
    private readonly afterStep?: (step: Step) => Promise<void> | void,
  ) {}

  /** `redis` as the process `who` sees it: the same server, every command scheduled. */
  connection<R extends RedisConnection>(redis: R, who: string): R {
    return new Proxy(redis, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof prop !== 'string' || typeof value !== 'function') return value;
        const fn = value as Call;
        if (prop === 'pipeline' || prop === 'multi') return (...args: unknown[]) => this.#batch(fn.apply(target, args) as object, who, prop);
        if (PASS_THROUGH.has(prop)) return fn.bind(target);
        return (...args: unknown[]) => this.#run(who, prop, args, () => fn.apply(target, args) as Promise<unknown>);
      },
    });
  }

  /** A pipeline or MULTI: queuing commands is local; `exec` is the one scheduled step. */
  #batch(batch: object, who: string, kind: string): object {
    const proxy: object = new Proxy(batch, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof prop !== 'string' || typeof value !== 'function') return value;
        const fn = value as Call;
        if (prop === 'exec') return () => this.#run(who, `${kind}.exec`, [], () => fn.apply(target, []) as Promise<unknown>);
        return (...args: unknown[]) => {
          const out = fn.apply(target, args);
          return out === target ? proxy : out;
        };
      },
    });
    return proxy;
  }

  async #run(who: string, command: string, args: readonly unknown[], call: () => Promise<unknown>): Promise<unknown> {
    await this.s.schedule(Promise.resolve(), `${who}: ${command}`);
    const run = this.#tail.then(() => {
      this.steps.push({ n: this.steps.length + 1, who, command, args });
      return call();
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Releases scheduled tasks (commands and whatever else the processes scheduled) one at a time,
   * each only once the previous command has answered and its caller has moved on, until `work`
   * settles; returns (or throws) what `work` did.
   */
  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    void work.then(
      () => (settled = true),
      () => (settled = true),
    );
    let checked = 0;
    let idle = 0;
    for (;;) {
      await this.#tail;
      await tick();
      while (checked < this.steps.length) {
        const step = this.steps[checked++]!;
        await this.afterStep?.(step);
      }
      if (settled) break;
      if (this.s.count() > 0) {
        idle = 0;
        await this.s.waitNext(1);
        await tick();
        continue;
      }
      // Nothing scheduled and not done: a caller is still on its way to its next command (a few
      // event-loop turns after a reply), or something outside the scheduler holds it up.
      if (++idle > 1000) throw new Error(`interleaver stuck after ${this.steps.length} commands: nothing scheduled, work not settled`);
      await (idle < 100 ? tick() : new Promise((resolve) => setTimeout(resolve, 1)));
    }
    return work;
  }
}

/** Connection methods that are not Redis commands: called as they are. */
const PASS_THROUGH = new Set(['on', 'once', 'off', 'emit', 'removeListener', 'removeAllListeners', 'listeners', 'listenerCount', 'duplicate', 'quit', 'disconnect', 'connect']);
