/**
 * Weighted routing, as properties. Smooth weighted round-robin (routing/weighted.ts) adds each
 * pool's weight w to its score, picks the highest and takes the total W off it; so after t picks a
 * pool's score is t*w - W*picks, the scores sum to 0, and picking the highest score is picking the
 * pool furthest behind its share t*w/W. What follows, and what is checked:
 * - a fresh picker repeats itself every W picks (2W with half weights) with each pool exactly w
 *   (2w) times in it, so every window of that length has exact counts;
 * - a pool is never a whole pick ahead of its share: picks(t) < t*w/W + 1 (the picked pool's
 *   score, at least W/n before the subtraction, stays above -W);
 * - bursts are bounded: as every score stays above -W and they sum to 0, none exceeds (n-1)W, and a
 *   run of k picks of one pool needs k <= 1 + (n - 1 + w/W - 1/n) * W/(W-w). Tighter "never twice
 *   in a row" rules do not hold: weights [19,16,1,18,2] give the first pool two in a row.
 * And through the router (FleetSnapshot + FleetRouter): pools without a serving agent matching the
 * task, or whose breaker is OPEN, never get a task; a half-open pool gets at most its probe budget;
 * a task is parked only when no pool qualifies; a pool's weight is its serving agents' weights with
 * DEGRADED ones counting half, so over one cycle each pool gets exactly its share. Then with
 * fc.scheduler racing registry reads, snapshot refreshes, breaker transitions (their pub/sub
 * messages late or lost), BreakerWatch re-reads, the clock and routing: the router acts on what its
 * snapshot and watch hold, the watch announces every change the router must hear of, and a refresh
 * asked for after a registry change sees it.
 */
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { describe, it } from 'vitest';
import { z } from 'zod';
import { Catalogue } from '../../src/model/catalogue.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { BreakerWatch } from '../../src/breaker/watch.ts';
import type { BreakerState } from '../../src/model/breaker-state.ts';
import { HEALTH_STATES, type Health } from '../../src/model/health-state.ts';
import { createLogger } from '../../src/config/logger.ts';
import { keys } from '../../src/redis/keys.ts';
import { PARKED_POOL, poolBreakerName } from '../../src/model/names.ts';
import type { AgentView } from '../../src/model/agent-record.ts';
import type { Registry } from '../../src/registry/registry.ts';
import type { Candidate } from '../../src/model/candidate.ts';
import { FleetRouter } from '../../src/routing/router.ts';
import { FleetSnapshot } from '../../src/routing/snapshot.ts';
import { WeightedPicker } from '../../src/routing/weighted.ts';
import type { PoolQueues } from '../../src/task/pool-queues.ts';
import { expectSame, expectThat } from '../support/property-check.ts';

const candidate = (pool: string, weight: number): Candidate => ({ pool, weight, backlog: 0, concurrency: 1 });

/** Positive weights that are whole or half (a DEGRADED agent counts half), so every sum is exact. */
const weightArb = fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 9 }).map((n) => n - 0.5));
const poolsArb = fc.array(weightArb, { minLength: 1, maxLength: 6 }).map((ws) => ws.map((w, i) => candidate(`p${i}`, w)));

describe('smooth weighted round-robin (WeightedPicker)', () => {
  it('gives each pool exactly its weight in every window of one cycle, never a pick ahead of its share, bursts within the bound', () => {
    fc.assert(
      fc.property(poolsArb, fc.nat(), (pools, offset) => {
        const picker = new WeightedPicker();
        const total = pools.reduce((t, c) => t + c.weight, 0);
        const cycle = 2 * total; // an integer even with half weights; the cycle of W picks twice over when W is whole
        const seq = Array.from({ length: 2 * cycle }, () => picker.pick('t', pools).pool);
        expectSame(seq.filter((p) => !pools.some((c) => c.pool === p)), [], 'picks outside the candidates');

        const n = pools.length;
        for (const { pool, weight } of pools) {
          const picksBefore = [0];
          for (const p of seq) picksBefore.push(picksBefore.at(-1)! + (p === pool ? 1 : 0));
          // Every window of `cycle` consecutive picks (any alignment) holds exactly 2w of this pool.
          const start = offset % (cycle + 1);
          expectSame(picksBefore[start + cycle]! - picksBefore[start]!, 2 * weight, () => `${pool} (w ${weight} of ${total}) in picks ${start}..${start + cycle}`);
          // Never a whole pick ahead of its share.
          const ahead = picksBefore.findIndex((picks, t) => picks - (t * weight) / total >= 1);
          expectThat(ahead === -1, () => `${pool} (w ${weight} of ${total}) a pick ahead of its share after ${ahead} picks: ${seq.join(' ')}`);
          let run = 0;
          let longest = 0;
          for (const p of seq) longest = Math.max(longest, (run = p === pool ? run + 1 : 0));
          const bound = 1 + ((n - 1 + weight / total - 1 / n) * total) / (total - weight);
          if (n > 1) expectThat(longest <= bound + 1e-9, () => `${pool} (w ${weight} of ${total}) ${longest} times in a row, bound ${bound}: ${seq.join(' ')}`);
        }
      }),
      { numRuns: 1000, seed: 0x5a33 },
    );
  });

  it('keeps a separate rotation per key', () => {
    fc.assert(
      fc.property(poolsArb, fc.array(fc.boolean(), { maxLength: 50 }), (pools, interleaving) => {
        const alone = new WeightedPicker();
        const shared = new WeightedPicker();
        for (const other of interleaving) {
          if (other) shared.pick('other', pools.slice().reverse());
          else expectSame(shared.pick('t', pools), alone.pick('t', pools), 'the same pick with or without another key in between');
        }
      }),
      { numRuns: 1000, seed: 0x5a34 },
    );
  });
});

/** Fixed breaker states, as the router reads them from BreakerWatch (no changes: no events). */
class FakeBreakers extends EventEmitter {
  constructor(private readonly states: ReadonlyMap<string, { state: BreakerState; halfOpenAt?: number }>) {
    super();
  }
  state(name: string): BreakerState {
    return this.states.get(name)?.state ?? 'CLOSED';
  }
  halfOpenAt(name: string): number | undefined {
    return this.states.get(name)?.halfOpenAt;
  }
  heldUntil(name: string, now: number): number | undefined {
    const at = this.halfOpenAt(name);
    return this.state(name) === 'OPEN' && at !== undefined && at > now ? at : undefined;
  }
}

const TAGS = ['gpu', 'eu'] as const;
const NOW = 1_900_000_000_000;
const log = createLogger({ logLevel: 'silent', logPretty: false });

interface AgentSpec {
  health: Health;
  draining: boolean;
  weight: number;
  tags: string[];
}
type Breaker = 'CLOSED' | 'OPEN' | 'OPEN_PAST' | 'HALF_OPEN';

const agentArb: fc.Arbitrary<AgentSpec> = fc.record({
  health: fc.constantFrom(...HEALTH_STATES),
  draining: fc.integer({ min: 1, max: 5 }).map((k) => k === 1),
  weight: fc.integer({ min: 1, max: 6 }),
  tags: fc.subarray([...TAGS]),
});
const fleetArb = fc.record({
  pools: fc.array(
    fc.record({
      agents: fc.array(agentArb, { maxLength: 4 }),
      breaker: fc.oneof({ weight: 5, arbitrary: fc.constant<Breaker>('CLOSED') }, fc.constantFrom<Breaker>('OPEN', 'OPEN_PAST', 'HALF_OPEN')),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  halfOpenProbes: fc.integer({ min: 1, max: 3 }),
  tags: fc.subarray([...TAGS], { maxLength: 1 }),
});

/** The real snapshot and router over stand-ins for Redis: the snapshot's own code turns the fleet into pools. */
function fleetRouter(list: () => Promise<AgentView[]>, breakers: FakeBreakers | BreakerWatch, halfOpenProbes: number) {
  const type = defineAgentType({
    name: 'transform',
    version: '1.0.0',
    payload: z.unknown(),
    result: z.unknown(),
    breaker: { failureRatio: 0.5, minRequests: 5, windowMs: 10_000, openMs: 1000, halfOpenProbes },
  });
  const registry = { list } as unknown as Registry;
  const queues = { refresh: async () => 0, all: () => [] } as unknown as PoolQueues;
  const snapshot = new FleetSnapshot(registry, queues, breakers as unknown as BreakerWatch, {} as Redis, 'prop', log);
  return { snapshot, router: new FleetRouter(snapshot, new Catalogue([type])) };
}

function view(id: string, pool: string, a: AgentSpec, type = 'transform'): AgentView {
  return {
    id,
    type,
    pool,
    version: '1.0.0',
    capabilities: [{ name: 'transform', version: '1.0.0' }],
    tags: a.tags,
    metadata: {},
    weight: a.weight,
    concurrency: 1,
    host: 'h',
    pid: 1,
    startedAt: new Date(NOW).toISOString(),
    health: a.health,
    running: 0,
    load: 0,
    draining: a.draining,
    lastHeartbeat: new Date(NOW).toISOString(),
  };
}

describe('the router over a fleet (FleetSnapshot + FleetRouter)', () => {
  it('never routes to an ineligible pool, keeps half-open pools within budget, splits by serving weight', async () => {
    await fc.assert(
      fc.asyncProperty(fleetArb, async (fleet) => {
        const names = fleet.pools.map((_, i) => `pool-${i}`);
        const agents = fleet.pools.flatMap((p, i) => p.agents.map((a, j) => view(`a${i}-${j}`, names[i]!, a)));
        const states = new Map<string, { state: BreakerState; halfOpenAt?: number }>();
        fleet.pools.forEach((p, i) => {
          const name = poolBreakerName({ type: 'transform', pool: names[i]! });
          if (p.breaker === 'OPEN') states.set(name, { state: 'OPEN', halfOpenAt: NOW + 1 });
          if (p.breaker === 'OPEN_PAST') states.set(name, { state: 'OPEN', halfOpenAt: NOW });
          if (p.breaker === 'HALF_OPEN') states.set(name, { state: 'HALF_OPEN' });
        });
        const { snapshot, router } = fleetRouter(async () => agents, new FakeBreakers(states), fleet.halfOpenProbes);
        await snapshot.refresh();

        // The spec, computed apart from the router.
        const weights = new Map<string, number>();
        const probing = new Set<string>();
        fleet.pools.forEach((p, i) => {
          const serving = p.agents.filter((a) => (a.health === 'HEALTHY' || a.health === 'DEGRADED') && !a.draining && fleet.tags.every((t) => a.tags.includes(t)));
          if (serving.length === 0 || p.breaker === 'OPEN') return;
          weights.set(names[i]!, serving.reduce((w, a) => w + (a.health === 'DEGRADED' ? a.weight / 2 : a.weight), 0));
          if (p.breaker !== 'CLOSED') probing.add(names[i]!);
        });
        const closedTotal = [...weights].reduce((t, [pool, w]) => (probing.has(pool) ? t : t + w), 0);

        const routed = new Map<string, number>();
        const sequence: string[] = [];
        const probesLeft = () => [...probing].filter((p) => (routed.get(p) ?? 0) < fleet.halfOpenProbes);
        const tasks = 2 * closedTotal + probing.size * fleet.halfOpenProbes + 3;
        for (let i = 0; i < tasks; i++) {
          const open = [...weights.keys()].filter((p) => !probing.has(p) || probesLeft().includes(p));
          const d = router.route({ type: 'transform', ...(fleet.tags.length ? { tags: fleet.tags } : {}) }, NOW);
          if (open.length === 0) {
            expectSame(d.pool, PARKED_POOL, () => `task ${i}: nothing qualifies, yet ${d.reason}`);
            continue;
          }
          expectThat(open.includes(d.pool), () => `task ${i} went to ${d.pool} (${d.reason}); eligible: ${open.join(', ')}`);
          expectSame(d.candidates.slice().sort(), open.slice().sort(), () => `task ${i}: candidates`);
          routed.set(d.pool, (routed.get(d.pool) ?? 0) + 1);
          sequence.push(d.pool);
        }
        for (const p of probing) expectThat((routed.get(p) ?? 0) <= fleet.halfOpenProbes, () => `${p} is half-open, got ${routed.get(p)} tasks`);
        // With only CLOSED pools the set of candidates never changes: one cycle gives exact shares.
        if (probing.size === 0) {
          const cycle = sequence.slice(0, 2 * closedTotal);
          for (const [pool, w] of weights) expectSame(cycle.filter((p) => p === pool).length, 2 * w, () => `${pool} (weight ${w}) in ${cycle.join(' ')}`);
        }
      }),
      { numRuns: 1000, seed: 0x5a35 },
    );
  });
});

const raceArb = fc.record({
  /** Fleet versions the registry goes through (the first is there at the start). */
  fleets: fc.array(fc.array(fc.array(agentArb, { maxLength: 3 }), { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
  /** Breaker transitions in Redis; a lost one's pub/sub message never arrives (a reconnect). */
  transitions: fc.array(fc.record({ pool: fc.nat(2), to: fc.constantFrom<BreakerState>('CLOSED', 'OPEN', 'HALF_OPEN'), lost: fc.integer({ min: 1, max: 4 }).map((k) => k === 1) }), {
    maxLength: 6,
  }),
  /** The watch re-reading every breaker (its safety net against lost messages). */
  rereads: fc.integer({ min: 0, max: 3 }),
  ticks: fc.array(fc.integer({ min: 100, max: 1500 }), { maxLength: 4 }),
  routes: fc.integer({ min: 1, max: 30 }),
  halfOpenProbes: fc.integer({ min: 1, max: 3 }),
});
const OPEN_MS = 1000;

describe('the router while its snapshot refreshes and breakers change (fc.scheduler)', () => {
  it('routes by what its watch and snapshot hold, hears of every breaker change, keeps probe budgets; a refresh after a change sees it', async () => {
    await fc.assert(
      fc.asyncProperty(raceArb, fc.scheduler(), async (sc, s) => {
        const pools = ['pool-0', 'pool-1', 'pool-2'];
        const names = pools.map((pool) => poolBreakerName({ type: 'transform', pool }));
        const policy = { failureRatio: 0.5, minRequests: 5, windowMs: 10_000, openMs: OPEN_MS, halfOpenProbes: sc.halfOpenProbes };
        const clock = { now: NOW };

        // Breakers as Redis holds them, and a BreakerWatch reading them through stand-in connections: its
        // re-reads answer whenever the scheduler says (possibly after later changes), its messages arrive
        // in order, late, or not at all.
        const stored = new Map(names.map((n) => [n, { state: 'CLOSED' as BreakerState, trips: 0, openedAt: 0 }]));
        const bk = keys('prop').breaker;
        const nameOf = new Map(names.map((n) => [bk.state(n), n]));
        const fakeRedis = {
          hgetall: (key: string) => {
            const b = { ...stored.get(nameOf.get(key)!)! };
            const hash: Record<string, string> = { state: b.state, trips: String(b.trips), ...(b.state === 'CLOSED' ? {} : { openedAt: String(b.openedAt) }) };
            return s.schedule(Promise.resolve(hash), `watch reads ${nameOf.get(key)}: ${b.state}`);
          },
          zcount: async () => 0,
        };
        const subscriber = Object.assign(new EventEmitter(), { subscribe: async () => 1, unsubscribe: async () => 1 });
        const watch = new BreakerWatch(fakeRedis as unknown as Redis, subscriber as unknown as Redis, 'prop', () => policy, 1e9, names);

        let registryVersion = 0;
        // Each fleet version also lists a marker agent of another type, so the test knows which version the snapshot holds.
        const fleet = (v: number) => [
          ...sc.fleets[v]!.flatMap((agents, p) => agents.map((a, j) => view(`a${p}-${j}`, pools[p]!, a))),
          view(`v${v}`, 'marker', { health: 'HEALTHY', draining: false, weight: 1, tags: [] }, 'version'),
        ];
        const { snapshot, router } = fleetRouter(
          () => {
            const v = registryVersion; // what Redis holds when the read reaches it; the answer comes back whenever
            return s.schedule(Promise.resolve(fleet(v)), `registry read (version ${v})`);
          },
          watch,
          sc.halfOpenProbes,
        );
        const snapshotVersion = () => Number(snapshot.pools('version')[0]?.agents[0]?.id.slice(1) ?? -1);

        // What the router reads of each breaker, as of the last change event it heard; probes sent since.
        const heard = new Map<string, string>();
        const seen = (n: string) => `${watch.state(n)} until ${watch.halfOpenAt(n)}`;
        const probes = new Map<string, number>();
        watch.on('change', (e: { name: string }) => {
          heard.set(e.name, seen(e.name));
          probes.delete(e.name);
        });
        await s.waitFor(Promise.all([watch.start(), snapshot.refresh()]));
        for (const n of names) if (!heard.has(n)) heard.set(n, seen(n));

        const changer = async () => {
          for (let v = 1; v < sc.fleets.length; v++) {
            await s.schedule(Promise.resolve(), `registry changes to version ${v}`);
            registryVersion = v;
            await snapshot.refresh();
            expectThat(snapshotVersion() >= v, () => `refresh() after version ${v} resolved with version ${snapshotVersion()}`);
          }
        };
        let delivered: Promise<unknown> = Promise.resolve();
        const breakers = async () => {
          for (const t of sc.transitions) {
            await s.schedule(Promise.resolve(), `breaker of ${pools[t.pool]} -> ${t.to}${t.lost ? ' (message lost)' : ''}`);
            const name = names[t.pool]!;
            const b = stored.get(name)!;
            if (b.state === t.to || (t.to === 'HALF_OPEN' && b.state !== 'OPEN')) continue; // not a transition a breaker makes
            if (t.to === 'OPEN') Object.assign(b, { trips: b.trips + 1, openedAt: clock.now });
            b.state = t.to;
            const message = JSON.stringify({ name, state: b.state, at: clock.now, trips: b.trips });
            if (!t.lost) delivered = delivered.then(() => s.schedule(Promise.resolve(), `message ${message}`)).then(() => subscriber.emit('message', bk.events, message));
          }
        };
        const rereads = async () => {
          for (let i = 0; i < sc.rereads; i++) {
            await s.schedule(Promise.resolve(), 'watch re-reads the breakers');
            await watch.refresh();
          }
        };
        const ticker = async () => {
          for (const ms of sc.ticks) {
            await s.schedule(Promise.resolve(), `clock +${ms} ms`);
            clock.now += ms;
          }
        };
        const producer = async () => {
          for (let i = 0; i < sc.routes; i++) {
            await s.schedule(Promise.resolve(), `route task ${i}`);
            for (const n of names) expectSame(seen(n), heard.get(n), () => `task ${i}: the watch changed ${n} without a change event`);
            const allowed: string[] = [];
            const probing = new Set<string>();
            for (const p of snapshot.pools('transform')) {
              const name = poolBreakerName(p);
              const state = watch.state(name);
              if (!p.agents.some((a) => (a.health === 'HEALTHY' || a.health === 'DEGRADED') && !a.draining)) continue;
              if (state === 'OPEN' && watch.halfOpenAt(name)! > clock.now) continue;
              if (state !== 'CLOSED') {
                if ((probes.get(name) ?? 0) >= sc.halfOpenProbes) continue;
                probing.add(p.pool);
              }
              allowed.push(p.pool);
            }
            const d = router.route({ type: 'transform' }, clock.now);
            const at = () => `task ${i} at +${clock.now - NOW} ms, snapshot version ${snapshotVersion()}: ${d.pool} (${d.reason})`;
            if (allowed.length === 0) expectSame(d.pool, PARKED_POOL, at);
            else expectThat(allowed.includes(d.pool), () => `${at()}; allowed: ${allowed.join(', ')}`);
            if (probing.has(d.pool)) {
              const name = poolBreakerName({ type: 'transform', pool: d.pool });
              probes.set(name, (probes.get(name) ?? 0) + 1);
            }
          }
        };
        await s.waitFor(Promise.all([changer(), breakers(), rereads(), ticker(), producer(), delivered]));
        await s.waitFor(delivered);
        // Once things settle, one more re-read brings the watch to what Redis holds.
        await s.waitFor(watch.refresh());
        for (const n of names) {
          const b = stored.get(n)!;
          expectSame(seen(n), `${b.state} until ${b.state === 'OPEN' ? b.openedAt + OPEN_MS : undefined}`, () => `${n} after a last re-read`);
        }
        await watch.stop();
      }),
      { numRuns: 1000, seed: 0x5a36 },
    );
  });
});
