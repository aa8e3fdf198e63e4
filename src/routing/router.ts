/**
 * Chooses the pool for each task from the fleet snapshot (no Redis call): only eligible pools,
 * meaning a serving agent matching the task's tags and version range, and a breaker that is CLOSED,
 * or admitting probes within its budget. The type's strategy, or the task's, picks among them.
 * With no eligible pool the task is parked, and the dispatcher routes it once one qualifies.
 */
import semver from 'semver';
import type { Catalogue } from '../model/catalogue.ts';
import { poolBreakerName, PARKED_POOL } from '../model/names.ts';
import type { AgentView } from '../model/agent-record.ts';
import type { Candidate, Picker } from '../model/candidate.ts';
import { onlyPoolReason, type RouteRequest, type Router, type RoutingDecision, type Strategy } from '../model/routing.ts';
import { poolEligibility } from '../model/eligibility.ts';
import { LeastLoadedPicker } from './least-loaded.ts';
import { RandomPicker } from './random.ts';
import { RoundRobinPicker } from './round-robin.ts';
import type { FleetSnapshot } from './snapshot.ts';
import { WeightedPicker } from './weighted.ts';

const agentWeight = (a: AgentView) => (a.health === 'DEGRADED' ? a.weight / 2 : a.weight);

/** How long a probe routed to a half-open pool holds its place in the budget without a breaker transition. */
export const PROBE_ROUTE_TTL_MS = 10_000;

export class FleetRouter implements Router {
  readonly #leastLoaded = new LeastLoadedPicker();
  readonly #pickers: Record<Strategy, Picker> = {
    weighted: new WeightedPicker(),
    'round-robin': new RoundRobinPicker(),
    'least-loaded': this.#leastLoaded,
    random: new RandomPicker(),
  };
  /**
   * When tasks were routed to a half-open pool as probes since its breaker last changed: at most its
   * probe budget at once. One that produced no transition within PROBE_ROUTE_TTL_MS (moved away,
   * lost with its agent) frees its place, so a lost probe never parks the pool for good.
   */
  readonly #probes = new Map<string, number[]>();

  constructor(
    private readonly snapshot: FleetSnapshot,
    private readonly catalogue: Catalogue,
  ) {
    snapshot.on('refreshed', () => {
      this.#leastLoaded.reset();
      this.#plain.clear();
    });
    snapshot.breakers.on('change', (e) => {
      this.#probes.delete(e.name);
      this.#plain.clear();
    });
  }

  /** Eligible pools per type for tasks without constraints, valid until the snapshot changes. */
  #plain = new Map<string, Evaluation>();

  route(req: RouteRequest, now?: number): RoutingDecision {
    const type = this.catalogue.get(req.type);
    const strategy = req.strategy ?? type.strategy;
    const constrained = Boolean(req.pool || req.tags?.length || req.version);
    let e = constrained ? undefined : this.#plain.get(type.name);
    // A cached evaluation without an OPEN breaker never expires: no clock read per task for it.
    if (!e || (e.until !== Infinity && e.until <= (now ??= Date.now()))) {
      e = this.#evaluate(type.name, type.breaker.halfOpenProbes, req, (now ??= Date.now()));
      if (!constrained) this.#plain.set(type.name, e);
    }
    if (e.candidates.length === 0) {
      return { strategy, pool: PARKED_POOL, candidates: [], reason: `no eligible pool (${e.why.join('; ') || 'no agents of this type'}): parked until one is` };
    }
    const chosen = e.candidates.length === 1 ? e.candidates[0]! : this.#pickers[strategy].pick(type.name, e.candidates);
    const probe = e.probing.has(chosen.pool);
    if (probe) {
      const breaker = poolBreakerName({ type: type.name, pool: chosen.pool });
      this.#probes.set(breaker, [...this.#liveProbes(breaker, (now ??= Date.now())), now]);
      this.#plain.delete(type.name); // the probe budget changed
    }
    const reason = e.candidates.length === 1 ? e.single : `${strategy} over ${e.candidates.length} eligible pools`;
    return { strategy, pool: chosen.pool, candidates: e.names, reason: probe ? `${reason}; a half-open probe` : reason };
  }

  /** Send times of this breaker's probes still in their place, oldest first. */
  #liveProbes(breaker: string, now: number): number[] {
    return (this.#probes.get(breaker) ?? []).filter((t) => t > now - PROBE_ROUTE_TTL_MS);
  }

  #evaluate(typeName: string, halfOpenProbes: number, req: RouteRequest, now: number): Evaluation {
    const candidates: Candidate[] = [];
    const probing = new Set<string>();
    const why: string[] = [];
    let until = Infinity;
    const pools = this.snapshot.pools(typeName).filter((p) => p.pool !== PARKED_POOL && (!req.pool || p.pool === req.pool));
    if (req.pool && pools.length === 0) why.push(`${req.pool}: no live agent`);

    for (const p of pools) {
      let agents = p.serving;
      if (req.tags?.length || req.version) {
        agents = agents.filter(
          (a) =>
            (!req.tags || req.tags.every((t) => a.tags.includes(t))) &&
            (!req.version || a.capabilities.some((c) => c.name === typeName && semver.satisfies(c.version, req.version!))),
        );
      }
      if (agents.length === 0) {
        const base = poolEligibility(p.agents);
        why.push(`${p.pool}: ${base.eligible ? `no serving agent with ${describe(req)}` : base.reasons.join(', ')}`);
        continue;
      }
      const breaker = poolBreakerName(p);
      const state = this.snapshot.breakers.state(breaker);
      if (state !== 'CLOSED') {
        const halfOpenAt = this.snapshot.breakers.heldUntil(breaker, now);
        if (halfOpenAt !== undefined) {
          why.push(`${p.pool}: breaker OPEN until ${new Date(halfOpenAt).toISOString()}`);
          until = Math.min(until, halfOpenAt); // re-evaluate when it starts admitting probes
          continue;
        }
        const live = this.#liveProbes(breaker, now);
        if (live.length >= halfOpenProbes) {
          why.push(`${p.pool}: breaker HALF_OPEN, probe budget in use`);
          until = Math.min(until, live[0]! + PROBE_ROUTE_TTL_MS); // re-evaluate when the oldest probe's place frees
          continue;
        }
        probing.add(p.pool);
      }
      candidates.push({
        pool: p.pool,
        weight: agents.reduce((w, a) => w + agentWeight(a), 0),
        concurrency: agents.reduce((c, a) => c + a.concurrency, 0),
        backlog: p.backlog,
      });
    }
    const single = candidates.length === 1 ? `${onlyPoolReason(candidates[0]!.pool)}${why.length ? ` (${why.join('; ')})` : ''}` : '';
    return { candidates, names: candidates.map((c) => c.pool), probing, why, single, until };
  }
}

interface Evaluation {
  candidates: Candidate[];
  names: string[];
  probing: Set<string>;
  why: string[];
  single: string;
  /** Time after which the evaluation is stale even without a snapshot change (an OPEN breaker turning half-open). */
  until: number;
}

function describe(req: RouteRequest): string {
  return [req.tags?.length ? `tags ${req.tags.join(',')}` : '', req.version ? `version ${req.version}` : ''].filter(Boolean).join(' and ');
}
