/**
 * The one mapping from errors to RFC 7807 problem+json. Everything the API answers with an error
 * goes through problemOf(); anything it does not recognise is a 500 and is logged as a bug.
 */
import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';
import { isSwitchyardError, RateLimitedError, ValidationError, type ErrorCode, type FieldIssue } from '../model/errors.ts';
import { isConnectionError } from '../redis/connection.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldIssue[];
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export const RETRY_AFTER_S = 5;

const STATUS: Partial<Record<ErrorCode, [number, string]>> = {
  VALIDATION_FAILED: [400, 'Invalid request'],
  UNKNOWN_AGENT_TYPE: [404, 'Unknown agent type'],
  TASK_NOT_FOUND: [404, 'Task not found'],
  NOT_FOUND: [404, 'Not found'],
  AGENT_NOT_FOUND: [404, 'Agent not found'],
  WORKER_NOT_FOUND: [404, 'Worker not registered'],
  LEASE_LOST: [409, 'Lease lost'],
  UNAUTHORIZED: [401, 'Unauthorized'],
  FORBIDDEN: [403, 'Forbidden'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'Unsupported media type'],
  PAYLOAD_TOO_LARGE: [413, 'Payload too large'],
  REDIS_UNAVAILABLE: [503, 'Service unavailable'],
  NOT_REPLICATED: [503, 'Not replicated'],
  BACKLOG_FULL: [429, 'Too many tasks waiting'],
  RATE_LIMITED: [429, 'Too many requests'],
  TASK_NOT_DEAD: [409, 'Task is not dead'],
  TASK_FINISHED: [409, 'Task already finished'],
  WORKFLOW_NOT_FOUND: [404, 'Workflow run not found'],
  WORKFLOW_FINISHED: [409, 'Workflow run already finished'],
  SIGNAL_NOT_FOUND: [404, 'Signal not found'],
  SIGNAL_TAKEN: [409, 'Signal not taken'],
  WORKFLOW_NODE: [409, 'Part of a workflow run'],
  IDEMPOTENCY_KEY_REUSED: [422, 'Idempotency key reused with a different request'],
  SCHEDULE_NOT_FOUND: [404, 'Schedule not found'],
  SCHEDULE_EXISTS: [409, 'Schedule already exists'],
};

/** body-parser's error types (it tags errors with `type`), and what they mean to a client. */
const BODY_ERRORS: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'Malformed JSON', 'the request body is not valid JSON'],
  'entity.too.large': [413, 'Payload too large', 'the request body is larger than SWITCHYARD_MAX_BODY_BYTES'],
  'encoding.unsupported': [415, 'Unsupported media type', 'unsupported Content-Encoding'],
  'charset.unsupported': [415, 'Unsupported media type', 'unsupported charset; send UTF-8 JSON'],
  'request.aborted': [400, 'Request aborted', 'the client closed the request before the body was read'],
  'request.size.invalid': [400, 'Bad request', 'the body length does not match Content-Length'],
};

/**
 * The 4xx status of an error Express's own parts raise in the http-errors style: the router for a
 * path that is not valid percent-encoding (URIError), body-parser for a body its Content-Encoding
 * cannot decode (zlib). The client's mistake, not a bug.
 */
function clientErrorStatus(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  const s = status ?? statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 499 ? s : undefined;
}

const slug = (s: string) => s.toLowerCase().replace(/_/g, '-');

export function problem(status: number, title: string, detail: string, code: string, errors?: FieldIssue[], retryAfterS = RETRY_AFTER_S): Reply {
  const body: Problem = { type: `/problems/${slug(code)}`, title, status, detail, ...(errors ? { errors } : {}) };
  const headers: Record<string, string> = { 'content-type': 'application/problem+json; charset=utf-8' };
  if (status === 503 || status === 429) headers['retry-after'] = String(retryAfterS);
  return { status, body, headers };
}

/**
 * A whole HTTP/1.1 problem+json answer as raw text, for a socket Express never sees (a request Node
 * refused, a connection over the cap); the connection closes after it.
 */
export function rawProblem(status: number, type: string, detail: string): string {
  const title = STATUS_CODES[status] ?? 'Error';
  const body = JSON.stringify({ type: `/problems/${type}`, title, status, detail });
  return `HTTP/1.1 ${status} ${title}\r\ncontent-type: application/problem+json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

export function sendReply(res: Response, reply: Reply): void {
  res.setHeader('x-content-type-options', 'nosniff');
  if (reply.headers) res.set(reply.headers);
  res.status(reply.status);
  if (reply.body === undefined) res.end();
  else if (reply.headers?.['content-type']) res.send(JSON.stringify(reply.body));
  else res.json(reply.body);
}

export function problemOf(err: unknown): { reply: Reply; unexpected: boolean } {
  if (err instanceof ValidationError) {
    return { reply: problem(400, 'Invalid request', err.message, err.code, [...err.issues]), unexpected: false };
  }
  if (isSwitchyardError(err)) {
    const known = STATUS[err.code];
    // A rate-limited client is told exactly when its request fits (whole seconds, as Retry-After allows).
    const retryAfterS = err instanceof RateLimitedError ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : undefined;
    if (known) return { reply: problem(known[0], known[1], err.message, err.code, undefined, retryAfterS), unexpected: false };
  }
  const bodyType = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
  if (typeof bodyType === 'string' && BODY_ERRORS[bodyType]) {
    const [status, title, detail] = BODY_ERRORS[bodyType];
    const extra = bodyType === 'entity.parse.failed' && err instanceof Error ? `: ${err.message}` : '';
    return { reply: problem(status, title, detail + extra, bodyType.replace(/\./g, '-')), unexpected: false };
  }
  const clientStatus = clientErrorStatus(err);
  if (clientStatus !== undefined && err instanceof Error) {
    const detail = err instanceof URIError ? `the URL is not valid percent-encoded UTF-8 (${err.message})` : `the request could not be read: ${err.message}`;
    return { reply: problem(clientStatus, STATUS_CODES[clientStatus] ?? 'Bad request', detail, 'BAD_REQUEST'), unexpected: false };
  }
  if (isConnectionError(err)) {
    return { reply: problem(503, 'Service unavailable', 'Redis is unreachable; try again shortly', 'REDIS_UNAVAILABLE'), unexpected: false };
  }
  return { reply: problem(500, 'Internal error', 'an unexpected error occurred; it has been logged', 'INTERNAL'), unexpected: true };
}
