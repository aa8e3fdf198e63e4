/**
 * Whether a pool may get new tasks, and why not: it needs a live HEALTHY or DEGRADED agent that is
 * not draining. (Routing adds the breaker state to this when breakers land.)
 */
import { isServing, type Health } from './health-state.ts';
import type { AgentView } from './agent-record.ts';

export interface Eligibility {
  eligible: boolean;
  /** Empty when eligible; otherwise what a person must fix. */
  reasons: string[];
}

export function poolEligibility(agents: readonly Pick<AgentView, 'health' | 'draining'>[]): Eligibility {
  if (agents.length === 0) return { eligible: false, reasons: ['no live agent in the pool'] };
  const serving = agents.filter((a) => isServing(a.health));
  if (serving.length === 0) {
    const counts = new Map<Health, number>();
    for (const a of agents) counts.set(a.health, (counts.get(a.health) ?? 0) + 1);
    const detail = [...counts].map(([h, n]) => `${n} ${h}`).join(', ');
    return { eligible: false, reasons: [`no HEALTHY or DEGRADED agent (${detail})`] };
  }
  if (serving.every((a) => a.draining)) return { eligible: false, reasons: ['every serving agent is draining'] };
  return { eligible: true, reasons: [] };
}
