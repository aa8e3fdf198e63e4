/**
 * Schedules in Redis: one hash of definitions (id -> JSON) and one of last fires, both in the slot of
 * the timer queue `{schedules}`. The timing itself lives in BullMQ's job schedulers (schedules.ts);
 * this store is what the API lists and what a fire reads to know what to start.
 */
import type { RedisConnection } from '../redis/connection.ts';
import { keys } from '../redis/keys.ts';
import type { ScheduleSpec } from '../model/schedule.ts';

/** How a schedule's last tick went: what it started (a task or run id), or why it started nothing. */
export interface FireRecord {
  tick: number;
  at: number;
  outcome: 'fired' | 'skipped' | 'failed';
  /** The task or run the fire started. */
  id?: string;
  reason?: string;
}

export class ScheduleStore {
  readonly #k: ReturnType<typeof keys>['schedules'];

  constructor(private readonly redis: RedisConnection, prefix: string) {
    this.#k = keys(prefix).schedules;
  }

  async get(id: string): Promise<ScheduleSpec | undefined> {
    const json = await this.redis.hget(this.#k.defs, id);
    return json ? (JSON.parse(json) as ScheduleSpec) : undefined;
  }

  /** Every schedule, oldest first. */
  async list(): Promise<ScheduleSpec[]> {
    const all = Object.values(await this.redis.hgetall(this.#k.defs)).map((j) => JSON.parse(j) as ScheduleSpec);
    return all.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  count(): Promise<number> {
    return this.redis.hlen(this.#k.defs);
  }

  /** Writes a new schedule; false if the id is taken. */
  async create(spec: ScheduleSpec): Promise<boolean> {
    return (await this.redis.hsetnx(this.#k.defs, spec.id, JSON.stringify(spec))) === 1;
  }

  async put(spec: ScheduleSpec): Promise<void> {
    await this.redis.hset(this.#k.defs, spec.id, JSON.stringify(spec));
  }

  /** Deletes a schedule and its last fire; false if there was none. */
  async remove(id: string): Promise<boolean> {
    const [removed] = await Promise.all([this.redis.hdel(this.#k.defs, id), this.redis.hdel(this.#k.fires, id)]);
    return removed === 1;
  }

  async recordFire(id: string, fire: FireRecord): Promise<void> {
    await this.redis.hset(this.#k.fires, id, JSON.stringify(fire));
  }

  async lastFires(ids: readonly string[]): Promise<Map<string, FireRecord>> {
    const out = new Map<string, FireRecord>();
    if (ids.length === 0) return out;
    const raw = await this.redis.hmget(this.#k.fires, ...ids);
    ids.forEach((id, i) => {
      const json = raw[i];
      if (json) out.set(id, JSON.parse(json) as FireRecord);
    });
    return out;
  }
}
