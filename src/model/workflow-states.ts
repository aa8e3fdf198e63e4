/**
 * The states of a workflow run, of its nodes and of their compensations: plain data, no Redis, so the
 * client, the dashboard's server side and the engine read one list (run-store.ts keeps them in Redis).
 */
export const FINAL_RUN_STATES = ['completed', 'compensated', 'compensation_failed', 'failed', 'cancelled'] as const;
export const RUN_STATES = ['running', 'failing', 'cancelling', 'compensating', ...FINAL_RUN_STATES] as const;
export type RunState = (typeof RUN_STATES)[number];
export type FinalRunState = (typeof FINAL_RUN_STATES)[number];
export const isFinal = (s: string): s is FinalRunState => (FINAL_RUN_STATES as readonly string[]).includes(s);

export const NODE_STATES = ['pending', 'ready', 'queued', 'done', 'dead', 'skipped', 'cancelled'] as const;
export type NodeState = (typeof NODE_STATES)[number];
/** How many nodes of a run are in each state; kept in the run's meta hash by the scripts (redis/lua/workflow-lib.lua). */
export type NodeCounts = Record<NodeState, number>;
/** The state of a node's compensation (`none`: the node has none, or never completed). */
export const COMPENSATION_STATES = ['pending', 'ready', 'queued', 'done', 'failed', 'none'] as const;
export type CompensationState = (typeof COMPENSATION_STATES)[number];
/** How a compensation that ran ended, as the run's compensation log records it. */
export const COMPENSATION_OUTCOMES = ['done', 'failed'] as const;
/** `node`: a workflow node; `compensation`: its compensation. */
export type Step = 'node' | 'compensation';
export type Outcome = 'done' | 'dead' | 'skipped';

