/**
 * Timers of workflow nodes (a sleep's wake, a signal's timeout): one sorted set for every run
 * (`{workflows}:_timers`, member "<run>\t<node>", score: when it is due), so a waiting node holds no
 * agent and no process. Every API process's engine runs a DueLoop over it: it claims the timers due
 * (each for one process, for a lease) and hands each to the node's kind (NodeKind.onTimer), then drops
 * it. Kill -9 of every process and a Redis restart (AOF) lose nothing: the set is in Redis, a timer
 * whose handling was cut short is claimed again when its lease ends, and settling a node twice is a
 * no-op.
 */
import type { Logger } from '../config/logger.ts';
import { DueLoop, MAX_SLEEP_MS } from '../housekeeping/due-loop.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';

/** How long a claimed timer is one process's before another may claim it again. */
const TIMER_LEASE_MS = 10_000;

export interface DueTimer {
  runId: string;
  nodeId: string;
  /** When it was due (its lease's end, when it was claimed again after a holder died). */
  at: number;
}

const member = (runId: string, nodeId: string) => `${runId}\t${nodeId}`;

export class NodeTimers {
  readonly #redis: RedisConnection;
  readonly #key: string;
  readonly #loop: DueLoop<DueTimer>;

  constructor(redis: RedisConnection, prefix: string, log: Logger, onDue: (timer: DueTimer) => Promise<void>) {
    this.#redis = redis;
    this.#key = keys(prefix).workflow.timers;
    const key = this.#key;
    this.#loop = new DueLoop<DueTimer>({
      name: 'workflow timers',
      leaseMs: TIMER_LEASE_MS,
      log,
      source: {
        async claim(now, leaseMs, batch) {
          const flat = await scripts.timerClaim.run(redis, [key], [now, leaseMs, batch]);
          const out: DueTimer[] = [];
          for (let i = 0; i < flat.length; i += 2) {
            const [runId, nodeId] = flat[i]!.split('\t') as [string, string];
            out.push({ runId, nodeId, at: Number(flat[i + 1]) });
          }
          return out;
        },
        async earliest() {
          const [, score] = await redis.zrange(key, '0', '0', 'WITHSCORES');
          return score === undefined ? undefined : Number(score);
        },
      },
      handle: async (t) => {
        await onDue(t);
        await redis.zrem(key, member(t.runId, t.nodeId));
      },
    });
  }

  /** Sets timers of a run's nodes (node id, due ms); a timer due within the loop's longest sleep wakes it now. */
  async set(runId: string, timers: ReadonlyArray<readonly [nodeId: string, at: number]>): Promise<void> {
    if (timers.length === 0) return;
    await this.#redis.zadd(this.#key, ...timers.flatMap(([id, at]) => [at, member(runId, id)]));
    if (Math.min(...timers.map(([, at]) => at)) - Date.now() < MAX_SLEEP_MS) this.#loop.kick();
  }

  /** Drops a node's timer; true if it was there. */
  async clear(runId: string, nodeId: string): Promise<boolean> {
    return (await this.#redis.zrem(this.#key, member(runId, nodeId))) === 1;
  }

  /** When a node's timer is due, if it has one. */
  async dueAt(runId: string, nodeId: string): Promise<number | undefined> {
    const at = await this.#redis.zscore(this.#key, member(runId, nodeId));
    return at === null ? undefined : Number(at);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }
}
