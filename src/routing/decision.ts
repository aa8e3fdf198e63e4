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

export interface Router {
  route(req: RouteRequest): RoutingDecision;
}
