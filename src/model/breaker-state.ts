/** A breaker's state as stored in Redis and shown by GET /v1/breakers. */
export const BREAKER_STATES = ['CLOSED', 'OPEN', 'HALF_OPEN'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface BreakerView {
  name: string;
  state: BreakerState;
  /** Times it has tripped (CLOSED -> OPEN, or a failed probe). */
  trips: number;
  openedAt?: string;
  /** When an OPEN breaker starts admitting probes. */
  halfOpenAt?: string;
  changedAt?: string;
  reason?: string;
  /** Outcomes in the current window (while CLOSED). */
  window: { successes: number; failures: number };
  probesInFlight: number;
}

/** What every process learns on the events channel. */
export interface BreakerEvent {
  name: string;
  state: BreakerState;
  at: number;
  trips: number;
}
