/**
 * Schedules in Redis, all in the slot `{schedules}`: a hash of definitions (id -> JSON), a hash of
 * last fires, the listing's order (a zset by creation time), and the timer: a zset of next ticks (id -> ms) and the claims of the processes firing
 * them. A schedule costs a hash field and two zset members (plus its last fire): no job, no timer
 * per schedule. Every change that touches the timer is one script (src/redis/lua/schedule-*.lua).
 */
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import type { ScheduleSpec } from '../model/schedule.ts';

/** How a tick went: what it started (a task or run id), or why it started nothing. */
export interface FireRecord {
  tick: number;
  at: number;
  outcome: 'fired' | 'skipped' | 'failed';
  /** The task or run the fire started. */
  id?: string;
  reason?: string;
}

/** A tick a process claimed: it fires it, then calls done() before its lease ends. */
export interface ClaimedTick {
  id: string;
  tick: number;
}

export class ScheduleStore {
  readonly #k: ReturnType<typeof keys>['schedules'];
  readonly #redis: RedisConnection;

  constructor(redis: RedisConnection, prefix: string) {
    this.#redis = redis;
    this.#k = keys(prefix).schedules;
  }

  async get(id: string): Promise<ScheduleSpec | undefined> {
    const json = await this.#redis.hget(this.#k.defs, id);
    return json ? (JSON.parse(json) as ScheduleSpec) : undefined;
  }

  /** Schedules `offset` to `offset + limit - 1`, oldest first, and how many there are. */
  async page(offset: number, limit: number): Promise<{ schedules: ScheduleSpec[]; total: number }> {
    const [ids, total] = await Promise.all([this.#redis.zrange(this.#k.index, String(offset), String(offset + limit - 1)), this.#redis.zcard(this.#k.index)]);
    if (ids.length === 0) return { schedules: [], total };
    const defs = await this.#redis.hmget(this.#k.defs, ...ids);
    return { schedules: defs.flatMap((j) => (j ? [JSON.parse(j) as ScheduleSpec] : [])), total };
  }

  /** Writes a new schedule and its first tick (none: paused or ended); false if the id is taken. */
  create(spec: ScheduleSpec, next: number | undefined): Promise<boolean> {
    return this.#write(spec, next, 'create');
  }

  /** Replaces a schedule and its next tick; false if it was deleted meanwhile. */
  update(spec: ScheduleSpec, next: number | undefined): Promise<boolean> {
    return this.#write(spec, next, 'update');
  }

  async #write(spec: ScheduleSpec, next: number | undefined, mode: 'create' | 'update'): Promise<boolean> {
    const args = [spec.id, JSON.stringify(spec), next === undefined ? '' : String(next), mode, String(spec.createdAt)];
    return (await scripts.scheduleWrite.run(this.#redis, [this.#k.defs, this.#k.due, this.#k.index], args)) === 1;
  }

  /** Deletes a schedule, its next tick and its last fire; false if there was none. */
  async remove(id: string): Promise<boolean> {
    const k = this.#k;
    return (await scripts.scheduleRemove.run(this.#redis, [k.defs, k.fires, k.due, k.claims, k.claimTicks, k.index], [id])) === 1;
  }

  /** Claims up to `batch` due ticks for `leaseMs` (and takes back the claims of processes that died). */
  async claim(now: number, leaseMs: number, batch: number): Promise<ClaimedTick[]> {
    const flat = await scripts.scheduleClaim.run(this.#redis, [this.#k.due, this.#k.claims, this.#k.claimTicks], [now, leaseMs, batch]);
    const out: ClaimedTick[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i]!, tick: Number(flat[i + 1]) });
    return out;
  }

  /** Ends a claim and makes `next` due; false if the claim had passed to another process. */
  async done(claimed: ClaimedTick, next: number | undefined): Promise<boolean> {
    const k = this.#k;
    return (await scripts.scheduleDone.run(this.#redis, [k.due, k.claims, k.claimTicks, k.defs], [claimed.id, String(claimed.tick), next === undefined ? '' : String(next)])) === 1;
  }

  /** Schedules in all, and those with a next tick (due, or being fired). */
  async counts(): Promise<{ total: number; scheduled: number }> {
    const [total, due, claimed] = await Promise.all([this.#redis.hlen(this.#k.defs), this.#redis.zcard(this.#k.due), this.#redis.zcard(this.#k.claims)]);
    return { total, scheduled: due + claimed };
  }

  /** When the earliest tick is due (ms), if any. */
  async earliest(): Promise<number | undefined> {
    const [, score] = await this.#redis.zrange(this.#k.due, '0', '0', 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  async recordFire(id: string, fire: FireRecord): Promise<void> {
    await this.#redis.hset(this.#k.fires, id, JSON.stringify(fire));
  }

  async lastFires(ids: readonly string[]): Promise<Map<string, FireRecord>> {
    const out = new Map<string, FireRecord>();
    if (ids.length === 0) return out;
    const raw = await this.#redis.hmget(this.#k.fires, ...ids);
    ids.forEach((id, i) => {
      const json = raw[i];
      if (json) out.set(id, JSON.parse(json) as FireRecord);
    });
    return out;
  }
}
