/**
 * The fleet by pool, for GET /v1/pools: agents by health, weight, concurrency, backlog and whether
 * the pool may get work. A pool is listed while it has agents or a queue with tasks.
 */
import type { Rate, TypeLimits } from '../model/agent-type.ts';
import type { Health } from '../model/health-state.ts';
import { HEALTH_STATES, isServing } from '../model/health-state.ts';
import { PARKED_POOL, poolLabel, type PoolRef } from '../model/names.ts';
import type { BreakerState } from '../model/breaker-state.ts';
import type { AgentView } from '../model/agent-record.ts';
import type { Registry } from '../registry/registry.ts';
import type { PoolQueues } from '../task/pool-queues.ts';
import { keys } from '../redis/keys.ts';
import { poolEligibility, type Eligibility } from '../model/eligibility.ts';

export interface PoolOverview extends PoolRef, Eligibility {
  name: string;
  agents: Record<Health, number> & { total: number; draining: number };
  /** Sum of the weights of serving agents, DEGRADED ones counting half (what weighted routing uses). */
  weight: number;
  concurrency: number;
  running: number;
  backlog: { waiting: number; active: number; delayed: number; dead: number; completed: number };
  breaker: BreakerState;
  /** The type's rate per pool, and how long the pool waits for its next start when it is at that rate now. */
  rateLimit?: Rate & { limitedForMs?: number };
  /** The type's flow limits, when it has any (rates per type, pool and key; concurrency per key). */
  limits?: TypeLimits;
  /** Set while a handler's RetryAfterError holds the pool: how long its agents still start nothing. */
  heldForMs?: number;
}

export async function poolOverview(
  registry: Registry,
  queues: PoolQueues,
  breakerState: (ref: PoolRef) => BreakerState,
  type?: string,
  limitsOf: (type: string) => TypeLimits | undefined = () => undefined,
): Promise<PoolOverview[]> {
  const [agents] = await Promise.all([registry.list(type ? { type } : {}), queues.refresh()]);
  const byPool = new Map<string, { ref: PoolRef; agents: AgentView[] }>();
  const entry = (ref: PoolRef) => {
    const name = poolLabel(ref);
    let e = byPool.get(name);
    if (!e) byPool.set(name, (e = { ref, agents: [] }));
    return e;
  };
  for (const a of agents) entry({ type: a.type, pool: a.pool }).agents.push(a);
  for (const { ref } of queues.all()) if ((!type || ref.type === type) && ref.pool !== PARKED_POOL) entry(ref);

  const overviews = await Promise.all(
    [...byPool.values()].map(async ({ ref, agents: list }) => {
      const counts = await queues.get(ref).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed');
      const limits = limitsOf(ref.type);
      const rate = limits?.ratePerPool;
      const limitedForMs = rate ? await queues.get(ref).getRateLimitTtl(rate.max) : 0;
      const heldForMs = await queues.redis.pttl(keys(queues.prefix).poolHold(ref));
      const byHealth = Object.fromEntries(HEALTH_STATES.map((h) => [h, list.filter((a) => a.health === h).length])) as Record<Health, number>;
      const serving = list.filter((a) => isServing(a.health) && !a.draining);
      const breaker = breakerState(ref);
      const eligibility = poolEligibility(list);
      if (breaker === 'OPEN') eligibility.reasons.push('circuit breaker OPEN');
      return {
        type: ref.type,
        pool: ref.pool,
        name: poolLabel(ref),
        agents: { ...byHealth, total: list.length, draining: list.filter((a) => a.draining).length },
        weight: serving.reduce((w, a) => w + (a.health === 'DEGRADED' ? a.weight / 2 : a.weight), 0),
        concurrency: serving.reduce((c, a) => c + a.concurrency, 0),
        running: list.reduce((r, a) => r + a.running, 0),
        backlog: {
          waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          dead: counts.failed ?? 0,
          completed: counts.completed ?? 0,
        },
        breaker,
        ...(rate ? { rateLimit: { ...rate, ...(limitedForMs > 0 ? { limitedForMs } : {}) } } : {}),
        ...(limits && Object.keys(limits).length > 0 ? { limits } : {}),
        ...(heldForMs > 0 ? { heldForMs } : {}),
        eligible: eligibility.eligible && breaker !== 'OPEN',
        reasons: eligibility.reasons,
      } satisfies PoolOverview;
    }),
  );
  // Pools with neither agents nor tasks (an old pool, long gone) are not shown.
  return overviews
    .filter((p) => p.agents.total > 0 || p.backlog.waiting + p.backlog.active + p.backlog.delayed + p.backlog.dead > 0 || p.pool === 'default')
    .sort((a, b) => a.name.localeCompare(b.name));
}
