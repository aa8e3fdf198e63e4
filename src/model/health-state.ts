/**
 * src/health/: the four health states and the rules that move an agent between them. Pure
 * logic, no I/O: agents feed it check outcomes, the registry stores what it decides.
 */
export const HEALTH_STATES = ['HEALTHY', 'DEGRADED', 'UNHEALTHY', 'UNKNOWN'] as const;
export type Health = (typeof HEALTH_STATES)[number];

/** Agents in these states may pull work (DEGRADED ones count half in weighted routing). */
export const isServing = (h: Health): boolean => h === 'HEALTHY' || h === 'DEGRADED';
