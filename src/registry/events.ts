/** What the registry publishes on its channel: every change of the fleet, for routers, dashboards and logs. */
import type { Health } from '../model/health-state.ts';

interface Base {
  agentId: string;
  type: string;
  pool: string;
  at: string;
}

export type RegistryEvent =
  | (Base & { kind: 'registered' | 'deregistered' | 'expired' | 'draining' })
  | (Base & { kind: 'health'; from: Health; to: Health; reason: string });
