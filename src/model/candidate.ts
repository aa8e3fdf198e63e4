/** A pool as routing sees it: what the strategies choose among. */
export interface Candidate {
  pool: string;
  /** Weighted routing: the pool's weight (serving agents' weights, DEGRADED counting half). */
  weight: number;
  /** Least-loaded: tasks waiting or running, and how many the pool's live agents run at once. */
  backlog: number;
  concurrency: number;
}

/** Picks one candidate; keeps whatever state it needs per key (the agent type). */
export interface Picker {
  pick(key: string, candidates: readonly Candidate[]): Candidate;
}
