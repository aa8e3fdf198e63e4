/**
 * Every error Switchyard raises on purpose is a SwitchyardError with a stable `code`.
 * Guards test the `code` field, not `instanceof`, so they still work on errors that crossed
 * a process boundary as JSON (a failed job's reason, an HTTP problem body).
 */

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'VALIDATION_FAILED'
  | 'UNKNOWN_AGENT_TYPE'
  | 'TASK_NOT_FOUND'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'REDIS_UNAVAILABLE'
  | 'NOT_REPLICATED'
  | 'REDIS_NOT_FOUND'
  | 'TASK_FATAL'
  | 'TASK_TIMEOUT'
  | 'AGENT_SHUTDOWN'
  | 'AGENT_NOT_READY'
  | 'AGENT_NOT_FOUND'
  | 'WORKER_NOT_FOUND'
  | 'LEASE_LOST'
  | 'RETRY_AFTER'
  | 'BACKLOG_FULL'
  | 'RATE_LIMITED'
  | 'TASK_NOT_DEAD'
  | 'TASK_FINISHED'
  | 'WORKFLOW_NOT_FOUND'
  | 'WORKFLOW_FINISHED'
  | 'SIGNAL_NOT_FOUND'
  | 'SIGNAL_TAKEN'
  | 'WORKFLOW_NODE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'SCHEDULE_NOT_FOUND'
  | 'SCHEDULE_EXISTS';

export interface FieldIssue {
  /** Where the problem is, e.g. `tasks[3].payload.amount`; empty for the whole value. */
  path: string;
  message: string;
}

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  /** When true, retrying the same task cannot succeed. */
  readonly nonRetryable: boolean;

  constructor(code: ErrorCode, message: string, opts: { nonRetryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.nonRetryable = opts.nonRetryable ?? false;
  }
}

export class ValidationError extends SwitchyardError {
  readonly issues: readonly FieldIssue[];
  constructor(message: string, issues: readonly FieldIssue[]) {
    super('VALIDATION_FAILED', message, { nonRetryable: true });
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

/** Thrown by a handler (or by Switchyard) when retrying cannot help: the task goes straight to dead. */
export class FatalError extends SwitchyardError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('TASK_FATAL', message, { nonRetryable: true, ...opts });
    this.name = 'FatalError';
  }
}

export class TimeoutError extends SwitchyardError {
  constructor(ms: number) {
    super('TASK_TIMEOUT', `task timeout: the attempt ran longer than timeoutMs=${ms}`);
    this.name = 'TimeoutError';
  }
}

/** Retry this task after `retryAfterMs` instead of its backoff (a downstream said when: 429, 503). */
export class RetryAfterError extends SwitchyardError {
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number, message = `retry after ${retryAfterMs} ms`) {
    super('RETRY_AFTER', message);
    this.name = 'RetryAfterError';
    this.retryAfterMs = Math.max(0, Math.round(retryAfterMs));
  }
}

/** The delay a RetryAfterError asks for (also after JSON), or undefined. */
export function retryAfterMs(err: unknown): number | undefined {
  if (!hasCode(err, 'RETRY_AFTER')) return undefined;
  const ms = (err as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** A client sent tasks faster than SWITCHYARD_RATE_LIMIT allows: nothing was enqueued; retry after retryAfterMs. */
export class RateLimitedError extends SwitchyardError {
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number, message: string) {
    super('RATE_LIMITED', message);
    this.name = 'RateLimitedError';
    this.retryAfterMs = retryAfterMs;
  }
}

export class RedisUnavailableError extends SwitchyardError {
  constructor(cause?: unknown) {
    super('REDIS_UNAVAILABLE', 'Redis is unreachable; the request was not accepted, try again shortly', { cause });
    this.name = 'RedisUnavailableError';
  }
}

/** Written to a master, but fewer replicas than SWITCHYARD_WAIT_REPLICAS confirmed it in time: not acknowledged. */
export class NotReplicatedError extends SwitchyardError {
  constructor(readonly confirmed: number, readonly wanted: number, timeoutMs: number) {
    super(
      'NOT_REPLICATED',
      `written, but only ${confirmed} of the ${wanted} replica(s) SWITCHYARD_WAIT_REPLICAS asks for confirmed it within ${timeoutMs} ms, so it is not acknowledged: a failover now could lose it. Retry with the same idempotencyKey: it finds what was written instead of writing it twice`,
    );
    this.name = 'NotReplicatedError';
  }
}

function hasCode(err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

export const isSwitchyardError = (err: unknown): err is SwitchyardError => err instanceof SwitchyardError;
export const isValidationError = (err: unknown): err is ValidationError => hasCode(err, 'VALIDATION_FAILED');
export const isRedisUnavailable = (err: unknown): boolean => hasCode(err, 'REDIS_UNAVAILABLE');
export const isTimeoutError = (err: unknown): boolean => hasCode(err, 'TASK_TIMEOUT');
/** True for errors that must not be retried: FatalError, validation failures, or anything flagged nonRetryable. */
export const isNonRetryable = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && (err as { nonRetryable?: unknown }).nonRetryable === true;
