/**
 * The agent registry in Redis: one hash per agent, index sets by type, pool, capability and tag,
 * and a zset of expiry times. Heartbeats refresh the expiry; an agent whose heartbeats lapse
 * reads as UNKNOWN, and is removed once it expires (by the housekeeper, see housekeeper.ts).
 */
import semver from 'semver';
import type { RedisConnection } from '../redis/connection.ts';
import { ValidationError } from '../model/errors.ts';
import type { Health } from '../model/health-state.ts';
import { keys as keyBuilder, type Keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import { parseOrThrow } from '../model/validation.ts';
import type { RegistryEvent } from './events.ts';
import { isHealth, registrationSchema, type AgentRecord, type AgentView, type Registration } from '../model/agent-record.ts';

export interface RegistryTiming {
  /** How often the agent heartbeats. */
  heartbeatMs: number;
  /** How long after its last heartbeat the agent is removed. */
  ttlMs: number;
}

export interface HeartbeatReport {
  health: Health;
  healthReason?: string | undefined;
  running: number;
  responseTimeMs?: number | undefined;
}

export type HeartbeatResult = 'ok' | 'draining' | 'gone';

export interface CapabilityQuery {
  name: string;
  /** semver range; `*` when not given. */
  range: string;
}

export interface AgentFilter {
  type?: string | undefined;
  pool?: string | undefined;
  health?: readonly Health[] | undefined;
  /** All of these tags (AND). */
  tags?: readonly string[] | undefined;
  capability?: CapabilityQuery | undefined;
}

/** Parses `transform@^1.2` (or `transform`, meaning any version). */
export function parseCapability(text: string, path = 'capability'): CapabilityQuery {
  const at = text.indexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  const range = at < 0 ? '*' : text.slice(at + 1);
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(name) || semver.validRange(range) === null) {
    throw new ValidationError(`capability ${JSON.stringify(text)} is not name@semver-range, e.g. transform@^1.2`, [
      { path, message: 'expected name@range, e.g. transform@^1.2' },
    ]);
  }
  return { name, range };
}

/** An agent whose last heartbeat is older than this many heartbeat intervals reads as UNKNOWN. */
export const LAPSE_FACTOR = 2;

export class Registry {
  readonly #redis: RedisConnection;
  readonly #k: Keys['registry'];

  constructor(redis: RedisConnection, prefix: string) {
    this.#redis = redis;
    this.#k = keyBuilder(prefix).registry;
  }

  #indexKeys(r: Pick<AgentRecord, 'type' | 'pool' | 'capabilities' | 'tags'>): string[] {
    return [
      this.#k.byType(r.type),
      this.#k.byPool(r),
      ...new Set(r.capabilities.map((c) => this.#k.byCapability(c.name))),
      ...new Set(r.tags.map((t) => this.#k.byTag(t))),
    ];
  }

  /** Validates and writes an agent as UNKNOWN (it pulls nothing until its first health check passes). */
  async register(input: Registration, timing: RegistryTiming, now = Date.now()): Promise<AgentRecord> {
    const record = parseOrThrow(registrationSchema, input, 'agent registration');
    await scripts.registryRegister.run(
      this.#redis,
      [this.#k.agent(record.id), this.#k.expiry, ...this.#indexKeys(record)],
      [record.id, JSON.stringify(record), 'UNKNOWN', now, timing.heartbeatMs, now + timing.ttlMs],
    );
    await this.publish({ kind: 'registered', agentId: record.id, type: record.type, pool: record.pool, at: new Date(now).toISOString() });
    return record;
  }

  async heartbeat(id: string, report: HeartbeatReport, timing: RegistryTiming, now = Date.now()): Promise<HeartbeatResult> {
    const result = await scripts.registryHeartbeat.run(
      this.#redis,
      [this.#k.agent(id), this.#k.expiry],
      [id, now, now + timing.ttlMs, report.health, report.healthReason ?? '', report.running, report.responseTimeMs === undefined ? '' : Math.round(report.responseTimeMs)],
    );
    return result === -1 ? 'gone' : result === 1 ? 'draining' : 'ok';
  }

  /** Removes an agent at once (clean shutdown). */
  async deregister(id: string): Promise<boolean> {
    return this.#remove(id, undefined, 'deregistered');
  }

  /** Asks an agent to finish what it has and take nothing new; it learns at its next heartbeat. */
  async drain(id: string): Promise<AgentView | undefined> {
    const ok = await scripts.registryDrain.run(this.#redis, [this.#k.agent(id)], []);
    if (!ok) return undefined;
    const view = await this.get(id);
    if (view) await this.publish({ kind: 'draining', agentId: id, type: view.type, pool: view.pool, at: new Date().toISOString() });
    return view;
  }

  /** Removes every agent whose expiry has passed; returns their ids. Run by the housekeeper. */
  async expire(now = Date.now()): Promise<string[]> {
    const ids = await this.#redis.zrangebyscore(this.#k.expiry, '-inf', String(now));
    const removed: string[] = [];
    for (const id of ids) if (await this.#remove(id, now, 'expired')) removed.push(id);
    return removed;
  }

  async #remove(id: string, expiredBy: number | undefined, kind: 'deregistered' | 'expired'): Promise<boolean> {
    const json = await this.#redis.hget(this.#k.agent(id), 'record');
    const record = json ? (JSON.parse(json) as AgentRecord) : undefined;
    const removed = await scripts.registryRemove.run(
      this.#redis,
      [this.#k.agent(id), this.#k.expiry, ...(record ? this.#indexKeys(record) : [])],
      [id, expiredBy ?? ''],
    );
    if (removed && record) await this.publish({ kind, agentId: id, type: record.type, pool: record.pool, at: new Date().toISOString() });
    return removed === 1;
  }

  async get(id: string, now = Date.now()): Promise<AgentView | undefined> {
    const [view] = await this.#read([id], now);
    return view;
  }

  async list(filter: AgentFilter = {}, now = Date.now()): Promise<AgentView[]> {
    const sets = [
      ...(filter.type ? [this.#k.byType(filter.type)] : []),
      ...(filter.type && filter.pool ? [this.#k.byPool({ type: filter.type, pool: filter.pool })] : []),
      ...(filter.capability ? [this.#k.byCapability(filter.capability.name)] : []),
      ...(filter.tags ?? []).map((t) => this.#k.byTag(t)),
    ];
    const ids = sets.length ? await this.#redis.sinter(...sets) : await this.#redis.zrange(this.#k.expiry, '0', '-1');
    const views = await this.#read(ids.sort(), now);
    return views.filter(
      (v) =>
        (!filter.pool || v.pool === filter.pool) &&
        (!filter.health?.length || filter.health.includes(v.health)) &&
        (!filter.capability ||
          v.capabilities.some((c) => c.name === filter.capability!.name && semver.satisfies(c.version, filter.capability!.range, { includePrerelease: true }))),
    );
  }

  async #read(ids: readonly string[], now: number): Promise<AgentView[]> {
    if (ids.length === 0) return [];
    const pipe = this.#redis.pipeline();
    for (const id of ids) pipe.hgetall(this.#k.agent(id));
    const replies = (await pipe.exec()) ?? [];
    const views: AgentView[] = [];
    for (const [err, hash] of replies) {
      if (err) throw err;
      const h = hash as Record<string, string>;
      if (!h.record) continue; // removed between the index read and now
      views.push(toView(h, now));
    }
    return views;
  }

  async publish(event: RegistryEvent): Promise<void> {
    await this.#redis.publish(this.#k.events, JSON.stringify(event));
  }
}

function toView(h: Record<string, string>, now: number): AgentView {
  const record = JSON.parse(h.record!) as AgentRecord;
  const heartbeatAt = Number(h.heartbeatAt);
  const heartbeatMs = Number(h.heartbeatMs);
  const silentMs = now - heartbeatAt;
  const lapsed = silentMs > LAPSE_FACTOR * heartbeatMs;
  const running = Number(h.running ?? 0);
  const view: AgentView = {
    ...record,
    health: lapsed ? 'UNKNOWN' : isHealth(h.health) ? h.health : 'UNKNOWN',
    running,
    load: record.concurrency > 0 ? running / record.concurrency : 0,
    draining: h.draining === '1',
    lastHeartbeat: new Date(heartbeatAt).toISOString(),
  };
  const reason = lapsed ? `no heartbeat for ${silentMs} ms` : h.healthReason;
  if (reason) view.healthReason = reason;
  if (h.responseMs) view.responseTimeMs = Number(h.responseMs);
  return view;
}
