/**
 * The Housekeeper: Switchyard's one runner of leased chores. Every process may run one; the one
 * holding the lease (`isLeader`) does the chores (expire dead agents; in the API also dispatch parked
 * and stranded tasks and sweep workflow runs). Chores must be idempotent: a lease can change hands
 * mid-chore.
 */
import type { RedisConnection } from '../redis/connection.ts';
import type { Logger } from '../config/logger.ts';
import { LeaseLock } from '../redis/lock.ts';

export interface Chore {
  name: string;
  run(now: number): Promise<void>;
}

export interface HousekeeperOptions {
  redis: RedisConnection;
  lockKey: string;
  owner: string;
  intervalMs: number;
  /** Lease length; a dead holder is replaced within about this long. */
  leaseMs: number;
  chores: readonly Chore[];
  log: Logger;
}

export class Housekeeper {
  readonly #lock: LeaseLock;
  readonly #o: HousekeeperOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #leader = false;
  #stopped = false;

  constructor(o: HousekeeperOptions) {
    this.#o = o;
    this.#lock = new LeaseLock(o.redis, o.lockKey, o.owner, o.leaseMs);
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    this.#stopped = false;
    const loop = () => {
      this.#running = this.tick().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs).unref();
      });
    };
    loop();
  }

  /** One round: hold (or try to take) the lease, and run the chores if we have it. */
  async tick(now = Date.now()): Promise<void> {
    try {
      const leader = await this.#lock.acquire();
      if (leader !== this.#leader) this.#o.log.info({ owner: this.#o.owner }, leader ? 'housekeeping: took the lease' : 'housekeeping: lost the lease');
      this.#leader = leader;
      if (!leader) return;
      for (const chore of this.#o.chores) {
        try {
          await chore.run(now);
        } catch (err) {
          this.#o.log.warn({ err, chore: chore.name }, 'housekeeping chore failed; retrying next round');
        }
      }
    } catch (err) {
      this.#leader = false;
      this.#o.log.debug({ err }, 'housekeeping: lease check failed (redis unreachable?)');
    }
  }

  /** Stops the loop and hands the lease over at once (a crashed process just lets it expire). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    if (this.#leader) await this.#lock.release().catch(() => undefined);
    this.#leader = false;
  }
}
