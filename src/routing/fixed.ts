/**
 * The router used until pool selection lands: the pool the task names, else `default`.
 * Same interface as the real strategies, so the producer does not change when they arrive.
 */
import type { RouteRequest, Router, RoutingDecision } from '../model/routing.ts';

export const DEFAULT_POOL = 'default';

export const fixedRouter: Router = {
  route(req: RouteRequest): RoutingDecision {
    const pool = req.pool ?? DEFAULT_POOL;
    return {
      strategy: 'fixed',
      pool,
      candidates: [pool],
      reason: req.pool ? `pool ${pool} requested by the producer` : `no pool requested: ${DEFAULT_POOL} pool`,
    };
  },
};
