/**
 * Concurrency per key, across every agent and pool of a type: a task with a concurrencyKey takes a
 * slot of its key before it runs (lua/key-slot-take.lua) and frees it when it ends. A task that finds
 * its key at its limit is held: it leaves the agent (moved to BullMQ's delayed set, its attempt
 * unspent, no agent slot taken) and is recorded among the key's held tasks; the task that frees a slot
 * wakes the next held one (a slot is reserved for it and it is promoted back to its queue, in its
 * place in the fair order). Slots are leases renewed while their tasks run, so the slots of an agent
 * that dies come back when its lease (the job lock's length) ends; every agent of the type wakes the
 * held tasks those free, each renewal tick. A woken task stays in the type's waking set until its
 * waker promoted it: should the waker die in between, another agent's tick promotes it once the
 * reservation's lease ends. A held task also comes back by itself after HOLD_MS, the last resort.
 */
import { Job, Queue } from 'bullmq';
import { defer, deferred } from './deferral.ts';
import type { Logger } from '../config/logger.ts';
import { queueName, parseQueueName } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { keys as keyBuilder } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';

/** How long a held task waits, at most, for a wake that never came. */
export const HOLD_MS = 5 * 60_000;

export interface KeySlotsOptions {
  redis: RedisConnection;
  prefix: string;
  type: string;
  /** The type's limits.concurrencyPerKey; a task's concurrencyLimit overrides it. */
  limit: number | undefined;
  /** A slot's lease (the job lock's length): renewed every third of it while its task runs. */
  leaseMs: number;
  log: Logger;
  /** Told when a task is held (the metric of limited tasks). */
  onHeld?: () => void;
}

export class KeySlots {
  readonly #o: KeySlotsOptions;
  readonly #k: ReturnType<ReturnType<typeof keyBuilder>['keySlots']>;
  /** Tasks this process runs with a slot: id -> concurrency key. */
  readonly #running = new Map<string, string>();
  readonly #queues = new Map<string, Queue>();
  /** Releases under way, awaited by stop(). */
  readonly #releasing = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(o: KeySlotsOptions) {
    this.#o = o;
    this.#k = keyBuilder(o.prefix).keySlots(o.type);
  }

  /** The limit a task runs under, or undefined when none applies (no key, or a key and no limit: fair order only). */
  limitOf(env: TaskEnvelope): number | undefined {
    return env.concurrency ? (env.concurrency.limit ?? this.#o.limit) : undefined;
  }

  /**
   * Takes the task's slot: true when it took one (release it when the task ends), false when no
   * limit applies. Throws DelayedError when the key is at its limit: the task is held (moved out of
   * the agent, its attempt unspent) until a slot frees.
   */
  async take(job: Job<TaskEnvelope>, token: string | undefined, track = true): Promise<boolean> {
    const env = job.data;
    const limit = this.limitOf(env);
    if (limit === undefined || !env.concurrency || !job.id) return false;
    const key = env.concurrency.key;
    const ref = parseQueueName(job.queueName);
    const member = this.#k.heldMember(ref?.pool ?? '', job.id);
    const order = job.opts.priority ?? 0;
    const taken = await scripts.keySlotTake.run(this.#o.redis, [this.#k.heldKeys], [this.#k.base, key, limit, job.id, this.#o.leaseMs, member, order]);
    if (taken === 1) {
      // Untracked: the task runs elsewhere (an HTTP worker), whose extends renew its slot (renew()).
      if (track) this.#running.set(job.id, key);
      return true;
    }
    await defer(job, token, Date.now() + HOLD_MS, this.#o.redis);
    this.#o.onHeld?.();
    // A slot freed between the take and the move may have woken it while it was still here: then it
    // holds a reserved slot, and goes back to its queue now.
    if ((await this.#o.redis.zscore(this.#k.slots(key), job.id)) !== null) await this.#promote(`${key}\t${member}`);
    throw deferred(`concurrency key ${JSON.stringify(key)} is at its limit of ${limit}: held until a slot frees`);
  }

  /** Frees the task's slot and wakes the key's next held tasks; never throws (a lost release ends with the lease). */
  release(job: Job<TaskEnvelope>, key = job.id ? this.#running.get(job.id) : undefined): void {
    if (!key || !job.id) return;
    this.#running.delete(job.id);
    const releasing = scripts.keySlotRelease
      .run(this.#o.redis, [this.#k.heldKeys], [this.#k.base, this.#o.leaseMs, job.id, key])
      .then((woken) => this.#promoteAll(woken))
      .catch((err: unknown) => this.#o.log.warn({ err: err instanceof Error ? err.message : String(err), key }, 'could not free a concurrency slot; its lease will'))
      .finally(() => this.#releasing.delete(releasing));
    this.#releasing.add(releasing);
  }

  /** Renews the slots of keyed tasks run elsewhere (an HTTP worker's, as their leases are extended). */
  async renew(tasks: ReadonlyArray<{ id: string; key: string }>): Promise<void> {
    if (tasks.length > 0) await scripts.keySlotRenew.run(this.#o.redis, [this.#k.heldKeys], [this.#k.base, this.#o.leaseMs, ...tasks.flatMap((t) => [t.key, t.id])]);
  }

  /** Renews this agent's slots and wakes the tasks that slots whose leases ended make room for. */
  async tick(): Promise<void> {
    const pairs = [...this.#running].flatMap(([id, key]) => [key, id]);
    if (pairs.length > 0) await scripts.keySlotRenew.run(this.#o.redis, [this.#k.heldKeys], [this.#k.base, this.#o.leaseMs, ...pairs]);
    const woken = await scripts.keySlotRelease.run(this.#o.redis, [this.#k.heldKeys], [this.#k.base, this.#o.leaseMs, '', '']);
    await this.#promoteAll(woken);
  }

  /** Starts the renewal tick (while the agent runs keyed tasks, and to wake tasks held by dead agents' slots). */
  start(): void {
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.#o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not renew concurrency slots'));
    }, Math.max(50, Math.floor(this.#o.leaseMs / 3)));
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#releasing]);
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    this.#queues.clear();
  }

  async #promoteAll(members: readonly string[]): Promise<void> {
    await Promise.all(members.map((m) => this.#promote(m)));
  }

  /**
   * Puts a woken task ("<key>\t<pool>\t<id>") back in its queue. One that came back by itself keeps
   * its reserved slot; one that is gone (cancelled, moved to another pool) gives it back.
   */
  async #promote(entry: string): Promise<void> {
    const parts = entry.split('\t');
    const id = parts.pop()!;
    const pool = parts.pop()!;
    const key = parts.join('\t');
    let queue = this.#queues.get(pool);
    if (!queue) {
      queue = new Queue(queueName({ type: this.#o.type, pool }), { connection: this.#o.redis, prefix: this.#o.prefix });
      queue.on('error', () => undefined);
      this.#queues.set(pool, queue);
    }
    const job = await Job.fromId<TaskEnvelope>(queue, id);
    if (job) await job.promote().catch(() => undefined);
    else await this.#promoteAll(await scripts.keySlotRelease.run(this.#o.redis, [this.#k.heldKeys], [this.#k.base, this.#o.leaseMs, id, key]));
    await this.#o.redis.zrem(this.#k.waking, entry);
  }
}
