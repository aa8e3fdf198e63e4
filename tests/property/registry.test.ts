/**
 * The registry under races, against real Redis: agents (each through the real Presence: heartbeats
 * carrying the health its HealthTracker gives, registering again once expired, deregistering on
 * stop), one or two housekeepers expiring agents, and an operator listing, reading and draining,
 * each process with its own connection, while a logical clock moves; fc.scheduler picks the order
 * their commands reach Redis in. After every command, from Redis alone:
 * - the record, the expiry zset and the index sets agree (no listed id without a record, no record
 *   missing from one of its indexes), and health is one of the four states;
 * - an agent appears only by registering itself, and disappears only by deregistering itself or by
 *   a housekeeper once its expiry has passed; a stopped agent never comes back;
 * - a heartbeat leaves the health the agent's tracker reports;
 * and every list/get answers what Redis held when it read: no removed agent, the filter honoured,
 * UNKNOWN once heartbeats lapsed (2 intervals), the reported health otherwise.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { RedisConnection } from '../../src/redis/connection.ts';
import semver from 'semver';
import { afterAll, describe, it } from 'vitest';
import { Presence } from '../../src/agent/presence.ts';
import { HEALTH_STATES, type Health } from '../../src/model/health-state.ts';
import { HealthTracker, type CheckOutcome } from '../../src/health/tracker.ts';
import { createLogger } from '../../src/config/logger.ts';
import { keys } from '../../src/redis/keys.ts';
import { scripts } from '../../src/redis/scripts.ts';
import { registrationSchema, type AgentRecord, type AgentView, type Registration } from '../../src/model/agent-record.ts';
import { LAPSE_FACTOR, Registry, type AgentFilter, type HeartbeatReport, type RegistryTiming } from '../../src/registry/registry.ts';
import { expectSame, expectThat } from '../support/property-check.ts';
import { Interleaver, scriptCall, type Step } from '../support/property-redis.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';

const { prefix: filePrefix, redis } = useRedisPrefix('prop-registry');
const others = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
const connections = [redis, ...others];
afterAll(() => Promise.all(others.map((c) => c.quit())));

const T0 = 1_900_000_000_000;
const timing: RegistryTiming = { heartbeatMs: 100, ttlMs: 300 };
const log = createLogger({ logLevel: 'silent', logPretty: false });

/** The registry on a process's clock: every `now` it does not get is the logical clock's. */
class ClockedRegistry extends Registry {
  constructor(
    redis: RedisConnection,
    prefix: string,
    private readonly clock: { now: number },
  ) {
    super(redis, prefix);
  }
  override register(input: Registration, t: RegistryTiming, now = this.clock.now): Promise<AgentRecord> {
    return super.register(input, t, now);
  }
  override heartbeat(id: string, report: HeartbeatReport, t: RegistryTiming, now = this.clock.now) {
    return super.heartbeat(id, report, t, now);
  }
  override expire(now = this.clock.now): Promise<string[]> {
    return super.expire(now);
  }
}

const AGENTS: Registration[] = [
  { id: 'a0', type: 'transform', pool: 'p0', version: '1.0.0', capabilities: [{ name: 'transform', version: '1.2.0' }], tags: ['gpu'] },
  { id: 'a1', type: 'transform', pool: 'p1', version: '1.0.0', capabilities: [{ name: 'transform', version: '2.0.0' }], tags: ['gpu', 'eu'] },
  { id: 'a2', type: 'transform', pool: 'p0', version: '1.0.0', capabilities: [{ name: 'transform', version: '1.0.0' }, { name: 'embed', version: '1.0.0' }], tags: [] },
];
const RECORDS = AGENTS.map((a) => registrationSchema.parse({ ...a, startedAt: new Date(T0).toISOString() }));
const FILTERS: AgentFilter[] = [
  {},
  { type: 'transform' },
  { type: 'transform', pool: 'p0' },
  { pool: 'p0' },
  { pool: 'p1', tags: ['gpu'] },
  { tags: ['gpu'] },
  { tags: ['gpu', 'eu'] },
  { health: ['HEALTHY', 'DEGRADED'] },
  { type: 'transform', health: ['UNKNOWN'] },
  { capability: { name: 'transform', range: '^1' } },
  { capability: { name: 'embed', range: '*' } },
];

/** Everything the registry keeps, as read between two commands. */
interface Raw {
  agents: Map<string, { record: AgentRecord; health: string; heartbeatAt: number; heartbeatMs: number; draining: boolean }>;
  expiry: Map<string, number>;
  sets: Map<string, Set<string>>;
}

function indexKeysOf(k: ReturnType<typeof keys>['registry'], r: AgentRecord): string[] {
  return [k.byType(r.type), k.byPool(r), ...new Set(r.capabilities.map((c) => k.byCapability(c.name))), ...r.tags.map((t) => k.byTag(t))];
}

async function readRaw(prefix: string): Promise<Raw> {
  const k = keys(prefix).registry;
  const setKeys = [...new Set(RECORDS.flatMap((r) => indexKeysOf(k, r)))];
  const p = redis.pipeline();
  for (const r of RECORDS) p.hgetall(k.agent(r.id));
  p.zrange(k.expiry, '0', '-1', 'WITHSCORES');
  for (const s of setKeys) p.smembers(s);
  const v = ((await p.exec()) ?? []).map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const raw: Raw = { agents: new Map(), expiry: new Map(), sets: new Map() };
  RECORDS.forEach((r, i) => {
    const h = v[i] as Record<string, string>;
    if (Object.keys(h).length === 0) return;
    raw.agents.set(r.id, {
      record: JSON.parse(h.record!) as AgentRecord,
      health: h.health!,
      heartbeatAt: Number(h.heartbeatAt),
      heartbeatMs: Number(h.heartbeatMs),
      draining: h.draining === '1',
    });
  });
  const flat = v[RECORDS.length] as string[];
  for (let i = 0; i < flat.length; i += 2) raw.expiry.set(flat[i]!, Number(flat[i + 1]));
  setKeys.forEach((s, i) => raw.sets.set(s, new Set(v[RECORDS.length + 1 + i] as string[])));
  return raw;
}

const SCRIPT_BY_SHA = new Map<string, string>([
  [scripts.registryRegister.sha, 'register'],
  [scripts.registryHeartbeat.sha, 'heartbeat'],
  [scripts.registryRemove.sha, 'remove'],
  [scripts.registryDrain.sha, 'drain'],
]);
/** What the registry sends that changes nothing (its only pipeline reads records): the state stays as it was. */
const READ_ONLY = new Set(['hget', 'hgetall', 'zrange', 'zrangebyscore', 'sinter', 'publish', 'pipeline.exec']);
function scriptOf(step: Step): { script: string; argv: string[] } {
  const call = scriptCall(step);
  return call ? { script: SCRIPT_BY_SHA.get(call.sha) ?? 'unknown script', argv: call.argv } : { script: step.command, argv: [] };
}

/** What Registry.list/get must answer, from what Redis held when they read the index and the records. */
function expectedViews(filter: AgentFilter, atIndex: Raw, atRecords: Raw, k: ReturnType<typeof keys>['registry'], now: number) {
  const sets = [
    ...(filter.type ? [k.byType(filter.type)] : []),
    ...(filter.type && filter.pool ? [k.byPool({ type: filter.type, pool: filter.pool })] : []),
    ...(filter.capability ? [k.byCapability(filter.capability.name)] : []),
    ...(filter.tags ?? []).map((t) => k.byTag(t)),
  ];
  const indexed = sets.length ? [...(atIndex.sets.get(sets[0]!) ?? [])].filter((id) => sets.every((s) => atIndex.sets.get(s)?.has(id))) : [...atIndex.expiry.keys()];
  return indexed
    .filter((id) => atRecords.agents.has(id))
    .map((id) => {
      const a = atRecords.agents.get(id)!;
      const lapsed = now - a.heartbeatAt > LAPSE_FACTOR * a.heartbeatMs;
      const capable = !filter.capability || a.record.capabilities.some((c) => c.name === filter.capability!.name && semver.satisfies(c.version, filter.capability!.range));
      return { id, pool: a.record.pool, health: (lapsed ? 'UNKNOWN' : a.health) as Health, draining: a.draining, tags: a.record.tags, capable };
    })
    .filter((v) => v.capable && (!filter.pool || v.pool === filter.pool) && (!filter.health?.length || filter.health.includes(v.health)))
    .map(({ capable: _, ...v }) => v)
    .sort((x, y) => x.id.localeCompare(y.id));
}

type AgentOp = { kind: 'check'; outcome: CheckOutcome } | { kind: 'beat' } | { kind: 'stop' };
const agentOpArb: fc.Arbitrary<AgentOp> = fc.oneof(
  fc.record({
    kind: fc.constant('check' as const),
    outcome: fc.oneof(
      fc.constant<CheckOutcome>({ ok: true, durationMs: 5 }),
      fc.constant<CheckOutcome>({ ok: true, durationMs: 900 }),
      fc.constant<CheckOutcome>({ ok: false, durationMs: 5, error: 'boom' }),
    ),
  }),
  fc.constant<AgentOp>({ kind: 'beat' }),
  fc.constant<AgentOp>({ kind: 'stop' }),
);
type OperatorOp = { kind: 'list'; filter: number } | { kind: 'get'; agent: number } | { kind: 'drain'; agent: number };
const operatorOpArb: fc.Arbitrary<OperatorOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('list' as const), filter: fc.nat(FILTERS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('get' as const), agent: fc.nat(RECORDS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drain' as const), agent: fc.nat(RECORDS.length - 1) }) },
);
const scenarioArb = fc.record({
  agents: fc.array(fc.array(agentOpArb, { maxLength: 6 }), { minLength: 1, maxLength: RECORDS.length }),
  unhealthyAfter: fc.integer({ min: 1, max: 3 }),
  housekeepers: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
  operator: fc.array(operatorOpArb, { maxLength: 5 }),
  ticks: fc.array(fc.integer({ min: 10, max: 250 }), { minLength: 1, maxLength: 6 }),
});

let runs = 0;

describe('registry under fc.scheduler races', () => {
  it('keeps records and indexes consistent, removes only what expired or left, and lists what it holds', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.scheduler(), async (sc, s) => {
        const prefix = `${filePrefix}:r${++runs}`; // a registry of its own per run
        const k = keys(prefix).registry;
        const clock = { now: T0 };
        const trackers = RECORDS.map(() => new HealthTracker({ degradedMs: 500, unhealthyAfter: sc.unhealthyAfter, emaAlpha: 0.3 }));
        const stoppedAt = new Map<string, number>();
        const snapshots: Raw[] = [await readRaw(prefix)]; // snapshots[n]: after step n

        const il = new Interleaver(s, async (step) => {
          const before = snapshots.at(-1)!;
          if (READ_ONLY.has(step.command)) return void snapshots.push(before);
          const after = await readRaw(prefix);
          snapshots.push(after);
          const { script, argv } = scriptOf(step);
          const at = () => `after step ${step.n} (${step.who}: ${script} ${argv.join(' ')})`;
          expectSame([...after.expiry.keys()].sort(), [...after.agents.keys()].sort(), () => `${at()}: expiry zset vs records`);
          for (const [set, ids] of after.sets) {
            for (const id of ids) expectThat(after.agents.has(id) && indexKeysOf(k, after.agents.get(id)!.record).includes(set), () => `${at()}: ${id} in ${set}`);
          }
          for (const [id, a] of after.agents) {
            expectThat(HEALTH_STATES.includes(a.health as Health), () => `${at()}: ${id} health ${a.health}`);
            for (const set of indexKeysOf(k, a.record)) expectThat(after.sets.get(set)?.has(id) === true, () => `${at()}: ${id} missing from ${set}`);
            if (!before.agents.has(id)) expectSame([step.who, script], [`agent ${id}`, 'register'], () => `${at()}: ${id} appeared`);
          }
          for (const id of before.agents.keys()) {
            if (after.agents.has(id)) continue;
            expectSame(script, 'remove', () => `${at()}: ${id} disappeared`);
            if (step.who === `agent ${id}`) expectSame(argv[1], '', () => `${at()}: an agent removes itself unconditionally`);
            else expectThat(before.expiry.get(id)! <= Number(argv[1]), () => `${at()}: ${step.who} removed ${id}, which expires at ${before.expiry.get(id)}`);
          }
          for (const [id, n] of stoppedAt) expectThat(!after.agents.has(id), () => `${at()}: ${id} is back after it stopped at step ${n}`);
          if (script === 'heartbeat' && after.agents.has(argv[0]!)) {
            const i = RECORDS.findIndex((r) => r.id === argv[0]);
            expectSame(after.agents.get(argv[0]!)!.health, trackers[i]!.health, () => `${at()}: health reported`);
          }
        });

        const agent = async (i: number, ops: AgentOp[]) => {
          const record = RECORDS[i]!;
          const registry = new ClockedRegistry(il.connection(connections[i % connections.length]!, `agent ${record.id}`), prefix, clock);
          const tracker = trackers[i]!;
          const presence = new Presence(registry, record, timing, () => ({ health: tracker.health, running: 0 }), () => undefined, log);
          await registry.register(record, timing);
          for (const op of ops) {
            // Between two checks time passes; and the tracker only moves once the last beat was looked at.
            await s.schedule(Promise.resolve(), `agent ${record.id}: ${op.kind}`);
            if (op.kind === 'stop') {
              await presence.stop();
              stoppedAt.set(record.id, il.steps.length);
              return;
            }
            if (op.kind === 'beat' || tracker.record(op.outcome)) await presence.beat();
          }
        };
        const housekeeper = async (h: number, rounds: number) => {
          const who = `housekeeper ${h}`;
          const registry = new ClockedRegistry(il.connection(connections[2 - h]!, who), prefix, clock);
          for (let j = 0; j < rounds; j++) {
            await s.schedule(Promise.resolve(), `${who}: next round`);
            await registry.expire();
          }
        };
        const operator = async (ops: OperatorOp[]) => {
          const registry = new ClockedRegistry(il.connection(connections[1]!, 'operator'), prefix, clock);
          for (const op of ops) {
            await s.schedule(Promise.resolve(), `operator: ${op.kind}`);
            const first = il.steps.length;
            const now = clock.now;
            if (op.kind === 'drain') {
              await registry.drain(RECORDS[op.agent]!.id);
              continue;
            }
            const filter = op.kind === 'list' ? FILTERS[op.filter]! : {};
            const got: AgentView[] = op.kind === 'list' ? await registry.list(filter, now) : [await registry.get(RECORDS[op.agent]!.id, now)].filter((v) => v !== undefined);
            const mine = il.steps.slice(first).filter((st) => st.who === 'operator');
            await s.schedule(Promise.resolve(), 'operator: compare'); // once the snapshots of its reads are taken
            // list: the index read, then the records (no second read when the index held nothing); get: the record only.
            const atIndex = snapshots[mine[0]!.n]!;
            const atRecords = snapshots[mine.at(-1)!.n]!;
            let want = expectedViews(filter, atIndex, atRecords, k, now);
            if (op.kind === 'get') want = want.filter((v) => v.id === RECORDS[op.agent]!.id);
            const what = () => `${op.kind} ${JSON.stringify(op.kind === 'list' ? filter : RECORDS[op.agent]!.id)} at +${now - T0} (steps ${mine.map((st) => st.n).join(',')})`;
            expectSame(
              got.map((v) => ({ id: v.id, pool: v.pool, health: v.health, draining: v.draining, tags: v.tags })),
              want,
              what,
            );
            for (const v of got) expectThat(!(stoppedAt.get(v.id)! <= first), () => `${what()}: ${v.id} had stopped`);
          }
        };
        const ticker = async () => {
          for (const ms of sc.ticks) {
            await s.schedule(Promise.resolve(), `clock +${ms} ms`);
            clock.now += ms;
          }
        };
        await il.run(
          Promise.all([...sc.agents.map((ops, i) => agent(i, ops)), ...sc.housekeepers.map((rounds, h) => housekeeper(h, rounds)), operator(sc.operator), ticker()]),
        );
      }),
      { numRuns: 1000, seed: 0x7e615 },
    );
  }, 60_000);
});
