/**
 * Request bodies: every route that changes state takes JSON or nothing, so a browser form
 * (text/plain, urlencoded, multipart: the types a page on another site may post without asking)
 * never reaches a handler. Three kinds of route:
 *  - `required` (POST /v1/tasks, ...): a JSON body; none is 400, another type 415;
 *  - `optional` (POST /v1/dlq/replay): a JSON body or none;
 *  - `none` (POST /v1/dlq/:id/replay, /v1/agents/:id/drain, /v1/breakers/:type/:pool/reset, the
 *    DELETEs): no body, or an empty JSON object `{}` (what generic clients send); a Content-Type,
 *    when sent, must be JSON even on an empty body; anything else in the body is 400.
 * Bodies are read up to SWITCHYARD_MAX_BODY_BYTES (413 beyond, and the connection is closed rather
 * than read to its end), and numbers JSON text can hold but JavaScript cannot (1e400) are a 400.
 */
import express, { type RequestHandler } from 'express';
import typeis from 'type-is';
import { SwitchyardError, ValidationError, type FieldIssue } from '../model/errors.ts';
import { formatPath } from '../model/validation.ts';
import { SAFE_METHODS } from './origin.ts';
import { problemOf, sendReply } from './problem.ts';

export const JSON_TYPES = ['application/json', 'application/*+json'];

/** A body is coming: chunked, or a Content-Length above 0. */
const hasContent = (req: Parameters<RequestHandler>[0]) => {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
};

function unsupported(type: string | undefined): SwitchyardError {
  return new SwitchyardError('UNSUPPORTED_MEDIA_TYPE', `Content-Type must be application/json, got ${JSON.stringify(type ?? '(none)')}`);
}

/** 415 for a Content-Type that is not JSON, and for a body sent without one. */
const jsonOrNothing: RequestHandler = (req, _res, next) => {
  const type = req.headers['content-type'];
  if (type !== undefined ? typeis.is(type, JSON_TYPES) === false : hasContent(req)) throw unsupported(type);
  next();
};

/** 400 when there is no body, 415 when it is not JSON; runs before the parser so nothing is read in vain. */
const bodyRequired: RequestHandler = (req, _res, next) => {
  const type = req.headers['content-type'];
  if (type !== undefined && typeis.is(type, JSON_TYPES) === false) throw unsupported(type);
  if (!hasContent(req)) throw new ValidationError('the request needs a JSON body', [{ path: '', message: 'required' }]);
  if (type === undefined) throw unsupported(type);
  next();
};

/**
 * For the whole app: an answer sent before the request's body was read to its end (refused first,
 * or cut at the limit) closes the connection. Otherwise Node would read and discard the rest of the
 * body to reuse the connection, however large it is.
 */
export const closeUnreadBodies: RequestHandler = (req, res, next) => {
  if (!hasContent(req)) return next();
  const writeHead = res.writeHead;
  res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
    if (!req.complete) this.setHeader('connection', 'close');
    return writeHead.apply(this, args);
  } as typeof writeHead;
  next();
};

function tooLarge(limit: number): SwitchyardError {
  return new SwitchyardError('PAYLOAD_TOO_LARGE', `the request body is larger than SWITCHYARD_MAX_BODY_BYTES (${limit} bytes)`);
}

/**
 * Stops a body at the limit. body-parser would read an oversized body to its end before answering
 * (to keep the connection), which a 100 MB upload turns into 100 MB read for nothing: here a
 * Content-Length over the limit is refused before a byte is read, and a chunked (or compressed) body
 * is counted as it arrives and refused the moment it passes the limit. Either way the answer closes
 * the connection (sendReply), so the rest is never read. body-parser's own limit still applies to
 * the decompressed size.
 */
function wireLimit(limit: number): RequestHandler {
  return (req, res, next) => {
    const length = Number(req.headers['content-length']);
    if (Number.isFinite(length) && length > limit) throw tooLarge(limit);
    const counted = req.headers['transfer-encoding'] !== undefined || req.headers['content-encoding'] !== undefined;
    if (!counted || !typeis(req, JSON_TYPES)) return next(); // nothing reads a body of another type
    let received = 0;
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limit) return;
      req.off('data', count);
      // body-parser is still reading and will call next() once the socket closes: answer now.
      if (!res.headersSent) sendReply(res, problemOf(tooLarge(limit)).reply);
    };
    req.on('data', count);
    req.once('end', () => req.off('data', count));
    next();
  };
}

const MAX_REPORTED = 20;

/**
 * JSON.parse reads 1e400 as Infinity, which JSON.stringify then writes as null: refuse it instead, naming
 * where it is. Iterative, with parent links instead of a path per value: a body may nest 500 000 deep.
 */
export function nonFiniteNumbers(body: unknown): FieldIssue[] {
  interface Entry {
    value: unknown;
    key: string | number | undefined;
    parent: Entry | undefined;
  }
  const pathOf = (e: Entry): string => {
    const keys: Array<string | number> = [];
    for (let at: Entry | undefined = e; at?.key !== undefined; at = at.parent) keys.push(at.key);
    return formatPath(keys.reverse());
  };
  const issues: FieldIssue[] = [];
  const stack: Entry[] = [{ value: body, key: undefined, parent: undefined }];
  while (stack.length > 0 && issues.length < MAX_REPORTED) {
    const e = stack.pop()!;
    const v = e.value;
    if (typeof v === 'number' && !Number.isFinite(v)) {
      const path = pathOf(e);
      issues.push({ path, message: `${path || 'the body'} is a number too large for JSON to carry (it would become ${String(v)}, then null); send a finite number or a string` });
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: e });
    } else if (typeof v === 'object' && v !== null) {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], key: entries[i]![0], parent: e });
    }
  }
  return issues;
}

/** The fast check every body gets: a walk that allocates nothing per value (paths only once one is found). */
function hasNonFinite(body: unknown): boolean {
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true;
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else if (typeof v === 'object' && v !== null) {
      for (const k in v) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

const finiteNumbers: RequestHandler = (req, _res, next) => {
  if (!hasNonFinite(req.body)) return next();
  const issues = nonFiniteNumbers(req.body);
  if (issues.length > 0) throw new ValidationError(`the request body holds a number JSON cannot represent: ${issues.map((i) => i.path || '(the body)').join(', ')}`, issues);
  next();
};

const isEmptyObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

const emptyOrNothing: RequestHandler = (req, _res, next) => {
  if (req.body !== undefined && !isEmptyObject(req.body)) {
    throw new ValidationError(`${req.method} ${req.path} takes no body (send none, or {})`, [{ path: '', message: 'this route takes no body' }]);
  }
  next();
};

export interface BodyParsers {
  required: RequestHandler[];
  optional: RequestHandler[];
  none: RequestHandler[];
  /** For a mounted page's own routes (Bull Board): JSON or nothing on writes; a JSON body read, on any method. */
  page: RequestHandler[];
}

const onWrites =
  (h: RequestHandler): RequestHandler =>
  (req, res, next) =>
    SAFE_METHODS.has(req.method) ? next() : h(req, res, next);

export function bodyParsers(maxBodyBytes: number): BodyParsers {
  const json = [wireLimit(maxBodyBytes), express.json({ limit: maxBodyBytes, type: JSON_TYPES, strict: false })];
  return {
    required: [bodyRequired, ...json, finiteNumbers],
    optional: [jsonOrNothing, ...json, finiteNumbers],
    none: [jsonOrNothing, ...json, emptyOrNothing],
    page: [onWrites(jsonOrNothing), ...json, finiteNumbers],
  };
}
