/** What a router decides for one task, stored on the task and shown by GET /v1/tasks/:id. */
export const STRATEGIES = ['weighted', 'least-loaded', 'round-robin', 'random'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface RouteRequest {
  type: string;
  /** A pool the producer asked for; routing only chooses among pools that match. */
  pool?: string | undefined;
  tags?: readonly string[] | undefined;
  strategy?: Strategy | undefined;
  /** semver range the agents' version of the type must satisfy. */
  version?: string | undefined;
}

export interface RoutingDecision {
  strategy: Strategy | 'fixed';
  pool: string;
  candidates: string[];
  reason: string;
}

/** The reason of the common decision: one eligible pool, nothing excluded. */
const ONLY_POOL_SUFFIX = ' is the only eligible pool';
export const onlyPoolReason = (pool: string): string => `${pool}${ONLY_POOL_SUFFIX}`;

/**
 * A decision as stored on the task: only what cannot be derived. The common decision (weighted,
 * one eligible pool: the queue's) is not stored at all; a single-pool decision by another strategy
 * stores `{strategy, pool}`. That saves ~70 bytes per job that BullMQ and Redis would otherwise
 * copy, encode and decode on every add, fetch and completion.
 */
export type StoredDecision = Pick<RoutingDecision, 'strategy' | 'pool'> & Partial<Pick<RoutingDecision, 'candidates' | 'reason'>>;

const isSinglePool = (d: RoutingDecision) => d.candidates.length === 1 && d.candidates[0] === d.pool && d.reason === onlyPoolReason(d.pool);

export function compactDecision(d: RoutingDecision): StoredDecision | undefined {
  if (!isSinglePool(d)) return d;
  return d.strategy === 'weighted' ? undefined : { strategy: d.strategy, pool: d.pool };
}

/** The full decision from a stored one (absent, compact or full) of a task in the queue of `pool`. */
export function expandDecision(d: StoredDecision | undefined, pool: string): RoutingDecision {
  if (!d) return { strategy: 'weighted', pool, candidates: [pool], reason: onlyPoolReason(pool) };
  if (d.candidates !== undefined && d.reason !== undefined) return d as RoutingDecision;
  return { strategy: d.strategy, pool: d.pool, candidates: d.candidates ?? [d.pool], reason: d.reason ?? onlyPoolReason(d.pool) };
}

export interface Router {
  route(req: RouteRequest): RoutingDecision;
}
