/**
 * Requests the API must refuse with a 4xx problem+json, one arbitrary per operation: random JSON,
 * valid bodies broken one place at a time (wrong types, missing and unknown keys, `__proto__` and
 * friends, unicode and lone surrogates, long strings, deep nesting), bodies over the size limit,
 * malformed JSON, wrong content types, charsets and encodings, bad path ids and query values, wrong
 * methods; schedules broken one field at a time on purpose (a 400 that names the field), and unknown
 * schedules (404); workflows whose map node is broken one field at a time (a 400 naming
 * `nodes[i].<field>`); signals (to SIGNAL_FIXTURE's run, whose signal nodes are never reached) whose
 * payload its node's schema refuses, one field at a time (a 400 naming `payload.<field>`), that are no
 * object or array, or nest too deep (400), that come a second time (409), to unknown runs and names
 * (404). GET /v1/events: a bad or unknown query field, or a bad Last-Event-ID header, is a 400 that
 * names it. The worker protocol: bodies to a registered worker broken one field at a time (a 400 naming
 * it), ids that are no registered worker's (404, with a body the route takes), a registration of an
 * undeclared type (404), a single result whose lease is not held (409). Whether a mutated input became
 * invalid is decided by the oracle, never assumed.
 */
import { parse as parseQuery } from 'node:querystring';
import fc from 'fast-check';
import { z } from 'zod';
import { MAX_PAYLOAD_DEPTH } from '../../src/model/task-request.ts';
import { schedulePatchSchema } from '../../src/model/schedule.ts';
import { SIGNAL_NAME_PATTERN } from '../../src/model/signal-node.ts';
import { RUN_ID_PATTERN } from '../../src/model/task-id.ts';
import { MAX_LEASE_WAIT_MS, MAX_LEASES_PER_REQUEST } from '../../src/model/worker-protocol.ts';
import { METHODS, methodsAt, type Operation, PAGE_PATHS } from './document.ts';
import { describeRequest, type FuzzRequest } from './http.ts';
import {
  batchIsValid,
  EVENT_ID,
  eventsQueryOf,
  queryIsValid,
  replayFilterIsValid,
  scheduleIsValid,
  schedulePatchIsValid,
  schedulePatchKnownBug,
  signalPayloadIsValid,
  taskIsValid,
  workflowIsValid,
  WORKER_ID,
  workerBodyIsValid,
  workerRegistrationIsValid,
} from './oracle.ts';
import { cronExpression, futureInstant, timeZone } from './schedule-arbitrary.ts';
import { arbitraryOf, type JsonSchema, PROTO_KEYS, text } from './schema-arbitrary.ts';
import {
  type FuzzContext,
  POOL_PATTERN,
  postJson,
  SCHEDULE_FIXTURE,
  SIGNAL_NAMES,
  SIGNAL_SCHEMA,
  SIGNAL_TAKEN_PAYLOAD,
  signalPath,
  type ValidRequests,
  WORKER_FIXTURE,
} from './valid.ts';

export interface InvalidCase {
  why: string;
  req: FuzzRequest;
  /** The statuses allowed, or any 4xx. */
  expect: readonly number[] | '4xx';
  /** A field the problem's `errors` must name (itself or something inside it), where the case broke one on purpose. */
  field?: string;
  /** The problem's `type` (`/problems/signal-taken`), where the case aims at one error on purpose. */
  problem?: string;
  /** Text one of the problem's `errors` messages must hold (an unknown key, which has no path of its own). */
  mentions?: string;
}

const invalidCase = (why: string, req: FuzzRequest, expect: readonly number[] | '4xx', field?: string, problem?: string, mentions?: string): InvalidCase =>
  Object.assign(
    { why, req, expect, ...(field === undefined ? {} : { field }), ...(problem === undefined ? {} : { problem }), ...(mentions === undefined ? {} : { mentions }) },
    { [fc.toStringMethod]: () => `${why}: ${describeRequest(req)}` },
  );

type Path = ReadonlyArray<string | number>;
type Mutation =
  | { kind: 'replace'; value: unknown }
  | { kind: 'delete' }
  | { kind: 'add key'; key: string; value: unknown }
  | { kind: 'unicode'; value: string }
  | { kind: 'long string'; length: number }
  | { kind: 'deep'; depth: number };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Stands in for a value too deep for JSON.stringify; swapped for the nesting in the text. */
const DEEP_MARKER = '\u0000deep\u0000';
const deepText = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

function pathsOf(v: unknown, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (path.length > 8) return out;
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...path, i], out));
  else if (isObject(v)) for (const k of Object.keys(v)) pathsOf(v[k], [...path, k], out);
  return out;
}

/** Sets an own property even for `__proto__` (plain assignment would change the prototype instead). */
const define = (o: Record<string, unknown>, key: string, value: unknown) =>
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });

/** The JSON text of `value` with one mutation applied at `path`. */
function mutate(value: unknown, path: Path, m: Mutation): string {
  const root: { v: unknown } = { v: JSON.parse(JSON.stringify(value ?? null)) as unknown };
  let parent: Record<string | number, unknown> = root;
  let key: string | number = 'v';
  for (const seg of path) {
    parent = parent[key] as Record<string | number, unknown>;
    key = seg;
  }
  const current = parent[key];
  const set = (v: unknown) => (Array.isArray(parent) ? (parent[key as number] = v) : define(parent, String(key), v));
  switch (m.kind) {
    case 'replace':
      set(m.value);
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else if (parent === root) set({});
      else delete parent[key];
      break;
    case 'add key':
      if (isObject(current)) define(current, m.key, m.value);
      else set(define({}, m.key, m.value));
      break;
    case 'unicode':
      set(typeof current === 'string' ? `${current.slice(0, 1)}${m.value}${current.slice(1)}` : m.value);
      break;
    case 'long string':
      set('x'.repeat(m.length));
      break;
    case 'deep':
      set(DEEP_MARKER);
      return JSON.stringify(root.v).replace(JSON.stringify(DEEP_MARKER), deepText(m.depth));
  }
  return JSON.stringify(root.v);
}

/** encodeURIComponent, except that a lone surrogate becomes its WTF-8 bytes instead of a URIError. */
export function encodeLoose(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(s[i]!);
    }
  }
  return out;
}

const badSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '..', '.', '%2e%2e', '%2E%2E%2F%2E%2E', '..%2F..%2Fetc%2Fpasswd', '%00', 'a%00b', '%', '%E0%A4%A', '%ZZ', '%C0%AF', '%ED%A0%80', '%FF',
    '__proto__', 'constructor', 'prototype', 'hasOwnProperty', '%20', '*', '%2A', '{id}', ':id', 'null', 'undefined', '0', '-1',
    '~', 'echo~', 'echo~..', 'echo~%00', 'wf_', 'wf_a.b.undo', 'wf_a..b', 'ECHO~x', 'echo~x%2Fy', '%3F', '%23', '%25', '%2F',
  ),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}~[A-Za-z0-9_-]{1,30}$/),
  fc.stringMatching(/^wf_[A-Za-z0-9_-]{1,30}(\.[A-Za-z0-9_-]{1,10}(\.undo)?)?$/),
  fc.integer({ min: 1000, max: 8000 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 100, max: 600 }).map((n) => '%F0%9F%99%82'.repeat(n)),
);

const decoded = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.constantFrom(1e308, -1, 0.5, -0, 2 ** 53, 1e21),
  text(), fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }), fc.dictionary(text(1, 8), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);

const awkwardKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PROTO_KEYS) },
  { weight: 2, arbitrary: text(0, 16) },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', '\udfff', 'a\ud83d', 'é', 'é', '🙂', '\u202e', '', ' ', 'type ', 'Type', 'TYPE', 'payload\u0000') },
);

/** What a prototype-polluting request would carry. */
const protoValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant({ polluted: true }),
  fc.constant({ prototype: { polluted: true } }),
  fc.constant({ toString: 'polluted', valueOf: 1 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const valueAt = (v: unknown, path: Path): unknown => path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], v);

const unicode = fc.constantFrom('\ud800', 'a\udc00b', '\udbff', '\u0000', '🙂', '\u202etxt', 'ﬀ', 'İ', 'e\u0301', '\uffff', '\ufffe', '\u2028', 'Ⅻ', '٣');

const malformed: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.constantFrom(
    '{', '}', '[', '{"a":}', '{a:1}', '{"a":1,}', '{"a":NaN}', '{"a":Infinity}', '{"a":undefined}', "{'a':1}", '{"a":"\\x"}', '{"a":"unterminated',
    '{"a":1}/*c*/', '// c\n{}', 'nul', 'tru', '{"a":01}', '{"a":.5}', '{"a":"\u0001"}', '\u0000', '{"a":1}{"b":2}', '{"a" 1}', '{"a":1 "b":2}', '   ', '\n',
  ),
  fc.constant(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])),
  fc.constant(Buffer.from([0xc0, 0xaf, 0x7b, 0x7d])),
);

const BAD_CONTENT_TYPES = [
  'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json',
  'application/jsonx', 'application/json-seq', 'json', 'application', 'text/html', 'application/octet-stream', 'image/png', 'application/javascript',
];

/** Worker bodies invalid only by a value nested `deep` (any nesting where a string or number is wanted). */
const WORKER_DEEP: Record<string, (deep: string) => string> = {
  '/v1/workers/:id/heartbeat': (deep) => `{"health":"HEALTHY","leases":[{"task":"a","lease":${deep}}]}`,
  '/v1/workers/:id/leases': (deep) => `{"max":${deep}}`,
  '/v1/workers/:id/leases/extend': (deep) => `{"leases":[{"task":${deep},"lease":"l"}]}`,
  '/v1/workers/:id/results': (deep) => `{"results":[{"task":"a","lease":"l","status":"failed","error":${deep}},{"task":"b","lease":"l","status":"completed"}]}`,
};

/** Ways to spoil a worker id (`<type>.<pool>.http-<12 hex>`) at a place in it; what still is one is left out. */
const ID_EDITS: ReadonlyArray<(id: string, at: number) => string> = [
  (id, at) => id.slice(0, at) + id.charAt(at).toUpperCase() + id.slice(at + 1),
  (id, at) => id.slice(0, at) + id.slice(at + 1),
  (id, at) => `${id.slice(0, at)}_${id.slice(at)}`,
  (id, at) => `${id.slice(0, at)} ${id.slice(at)}`,
  (id, at) => `${id.slice(0, at)}/${id.slice(at)}`,
  (id) => `${id}0`,
  (id) => `${id}.`,
  (id) => ` ${id}`,
  (id) => id.replace('.http-', '.node-'),
  (id) => id.replace('.http-', '.http_'),
  (id) => id.replace(/^[^.]+\./, ''),
  (id) => id.replace(/\.[^.]+\.http-/, '..http-'),
  (id) => id.replace(/[0-9a-f]$/, 'g'),
  (id) => id.toUpperCase(),
];

export class InvalidRequests {
  constructor(
    private readonly ctx: FuzzContext,
    private readonly valid: ValidRequests,
  ) {}

  /** The invalid cases of one operation. */
  cases(op: Operation): fc.Arbitrary<InvalidCase> {
    const kinds: Array<fc.WeightedArbitrary<InvalidCase>> = [{ weight: 1, arbitrary: this.#wrongMethod(op) }];
    if (op.body !== 'none') kinds.push(...this.#bodyCases(op));
    if (op.params.length) kinds.push({ weight: 6, arbitrary: this.#badParams(op) });
    if (op.query) kinds.push(...this.#queryCases(op).map((arbitrary) => ({ weight: 3, arbitrary })));
    if (op.method === 'GET' && op.params.length === 0) kinds.push({ weight: 2, arbitrary: this.#extraSegments(op) });
    if (op.path === '/v1/schedules/:id') kinds.push({ weight: 3, arbitrary: this.#unknownSchedule(op) });
    if (op.path === '/v1/workflows/:id/signals/:name') kinds.push({ weight: 6, arbitrary: this.#signalCases() });
    if (op.path === '/v1/events') kinds.push({ weight: 4, arbitrary: this.#lastEventIdHeader(op) });
    if (op.path.startsWith('/v1/workers')) kinds.push({ weight: 4, arbitrary: this.#workerCases(op) });
    return fc.oneof(...kinds);
  }

  /**
   * Wrong methods on the pages the app mounts (Bull Board, the dashboard). Not OPTIONS: Bull Board's
   * router answers it with the methods the page allows, which is what OPTIONS is for.
   */
  pages(): fc.Arbitrary<InvalidCase> {
    return fc
      .tuple(fc.constantFrom(...PAGE_PATHS), fc.constantFrom(...METHODS.filter((m) => m !== 'GET' && m !== 'OPTIONS')), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }))
      .map(([path, method, body]) =>
        invalidCase('wrong method on a page', { method, path, ...(body === undefined || method === 'TRACE' ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) }, [404, 405]),
      );
  }

  #samplePath(op: Operation): string {
    // A worker's routes: one of the registered workers (no wrong method is a DELETE of it: DELETE is its route).
    const worker = () => encodeURIComponent(this.valid.workers[0]!);
    const id = op.path.startsWith('/v1/workflows')
      ? 'wf_fuzz'
      : op.path.startsWith('/v1/agents')
        ? 'fuzz-agent-x'
        : op.path.startsWith('/v1/schedules')
          ? String(SCHEDULE_FIXTURE.id)
          : op.path.startsWith('/v1/workers/')
            ? worker()
            : 'echo~fuzz';
    const sample: Record<string, string> = { type: 'echo', pool: 'default', id, name: SIGNAL_NAMES.open };
    return op.path.replace(/:([a-z]+)/g, (_, p: string) => sample[p]!);
  }

  #wrongMethod(op: Operation): fc.Arbitrary<InvalidCase> {
    const path = this.#samplePath(op);
    const allowed = methodsAt(path);
    return fc
      .tuple(fc.constantFrom(...METHODS.filter((m) => !allowed.has(m))), fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }))
      .map(([method, body]) =>
        invalidCase('wrong method', { method, path, ...(body === undefined || method === 'TRACE' ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) }, [404, 405]),
      );
  }

  /**
   * How to break the body of an operation: its valid bodies, the oracle, a body invalid only by its
   * depth, and (where a body carries task options) bodies whose options come unchecked from the schema.
   */
  #model(op: Operation): {
    valid: fc.Arbitrary<unknown>;
    isValid: (v: unknown) => boolean;
    deep: (depth: number) => string;
    options?: fc.Arbitrary<unknown>;
    /** Where the bodies go, when not to op.path (a PATCH goes to one schedule). */
    path?: string;
    /** Bodies broken one field at a time, each with the field the answer must name. */
    breaks?: fc.Arbitrary<{ why: string; body: unknown; field: string | undefined }>;
  } {
    const { catalogue, limits } = this.ctx;
    const task = this.valid.task();
    switch (op.path) {
      case '/v1/tasks':
        return {
          valid: task,
          isValid: (v) => taskIsValid(catalogue, v),
          deep: (d) => `{"type":"echo","payload":{"k":${deepText(d)}}}`,
          options: fc.tuple(task, this.valid.rawTaskOptions).map(([t, o]) => ({ ...t, ...o })),
        };
      case '/v1/tasks/batch':
        return {
          valid: this.valid.batch(),
          isValid: (v) => batchIsValid(catalogue, limits, v),
          deep: (d) => `{"tasks":[{"type":"echo","payload":{}},{"type":"echo","payload":{"k":${deepText(d)}}}]}`,
          options: fc.tuple(this.valid.batch(), this.valid.rawTaskOptions).map(([b, o]) => ({ tasks: [...b.tasks.slice(1), { ...b.tasks[0], ...o }] })),
        };
      case '/v1/workflows':
        return {
          valid: this.valid.workflow(),
          isValid: (v) => workflowIsValid(catalogue, limits, v),
          options: fc
            .tuple(this.valid.workflow(), this.valid.rawNodeOptions)
            .map(([w, o]) => ({ ...w, nodes: (w.nodes as Array<Record<string, unknown>>).map((n, i) => (i === 0 ? { ...n, ...o } : n)) })),
          deep: (d) =>
            d % 2
              ? `{"nodes":[{"id":"a","type":"echo","payload":{"k":${deepText(d)}}}]}`
              : `{"nodes":[{"id":"a","type":"echo","payload":{},"compensate":{"payload":{"k":${deepText(d)}}}}]}`,
          breaks: this.valid.mapWorkflow().chain(({ workflow, index }) => this.#mapBreak(workflow, index)),
        };
      case '/v1/dlq/replay':
        return { valid: this.valid.filter(), isValid: replayFilterIsValid, deep: (d) => `{"error":${deepText(d)}}` };
      case '/v1/schedules': {
        const schedule = this.valid.schedule();
        return {
          valid: schedule,
          isValid: (v) => scheduleIsValid(catalogue, limits, v),
          deep: (d) => `{"everyMs":3600000,"paused":true,"task":{"type":"echo","payload":{"k":${deepText(d)}}}}`,
          options: fc.oneof(
            fc.tuple(schedule, this.valid.rawTaskOptions).map(([s, o]) => (s.task ? { ...s, task: { ...s.task, ...o } } : { ...s, ...o })),
            fc.tuple(schedule, this.#rawTiming).map(([s, o]) => ({ ...s, ...o })),
          ),
          breaks: schedule.chain((s) => this.#scheduleBreak(s, false)),
        };
      }
      case '/v1/schedules/:id': {
        // Every body goes to the fixture schedule, which exists: a patch to an unknown one is refused before its body is read.
        const current = { ...SCHEDULE_FIXTURE };
        const patch = this.valid.schedulePatch(current);
        return {
          path: `/v1/schedules/${String(current.id)}`,
          valid: patch,
          // A patch the API mishandles today is neither valid nor invalid to the fuzz (oracle.ts schedulePatchKnownBug).
          isValid: (v) => schedulePatchIsValid(catalogue, limits, current, v) || (isObject(v) && schedulePatchKnownBug(current, v) !== undefined),
          deep: (d) => `{"task":{"type":"echo","payload":{"k":${deepText(d)}}}}`,
          options: fc.oneof(
            fc.tuple(patch, this.valid.scheduledTask(), this.valid.rawTaskOptions).map(([p, t, o]) => ({ ...p, task: { ...t, ...o } })),
            fc.tuple(patch, this.#rawTiming).map(([p, o]) => ({ ...p, ...o })),
          ),
          breaks: patch.chain((p) => this.#scheduleBreak(p, true)),
        };
      }
      case '/v1/workflows/:id/signals/:name': {
        // Every body goes to the fixture's `fuzz-approve`, which has a schema and is never reached: a payload taken by mistake is kept, not delivered.
        const payload = this.valid.signalPayload(SIGNAL_SCHEMA);
        return {
          path: signalPath(this.#signalRun, SIGNAL_NAMES.schema),
          valid: payload,
          isValid: (v) => signalPayloadIsValid(SIGNAL_SCHEMA, v),
          deep: (d) => `{"decision":"approve","note":null,"meta":${deepText(d)}}`,
          breaks: payload.chain((p) => this.#signalBreak(p)),
        };
      }
      case '/v1/workers': {
        const registration = this.valid.workerRegistration();
        return {
          valid: registration,
          isValid: (v) => workerRegistrationIsValid(catalogue, v),
          // Metadata takes any JSON, however deep: depth is refused where a string is wanted.
          deep: (d) => `{"type":"etl","host":${deepText(d)}}`,
          breaks: registration.chain((r) => this.#workerBreak(op, r)),
        };
      }
      case '/v1/workers/:id/heartbeat':
      case '/v1/workers/:id/leases':
      case '/v1/workers/:id/leases/extend':
      case '/v1/workers/:id/results': {
        // Every body goes to a registered worker: only the body is wrong.
        const body = this.#workerBody(op.path);
        return {
          path: this.#samplePath(op),
          valid: body,
          isValid: (v) => workerBodyIsValid(op.path, v),
          deep: (d) => WORKER_DEEP[op.path]!(deepText(d)),
          breaks: body.chain((b) => this.#workerBreak(op, b)),
        };
      }
      default:
        throw new Error(`no body model for ${op.id}`);
    }
  }

  #bodyCases(op: Operation): Array<fc.WeightedArbitrary<InvalidCase>> {
    const model = this.#model(op);
    const limit = this.ctx.maxBodyBytes;
    const send = (body: string | Buffer | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }): FuzzRequest => ({
      method: op.method,
      path: model.path ?? op.path,
      headers,
      ...(body === undefined ? {} : { body }),
    });
    /** A JSON text the API must refuse: 413 over the limit, else a 4xx when the oracle says invalid; undefined when still valid. */
    const classify = (why: string, body: string): InvalidCase | undefined => {
      if (Buffer.byteLength(body) > limit) return invalidCase(why, send(body), [413]);
      return model.isValid(JSON.parse(body)) ? undefined : invalidCase(why, send(body), '4xx');
    };
    const defined = (c: InvalidCase | undefined): c is InvalidCase => c !== undefined;
    const validText = model.valid.map((v) => JSON.stringify(v));

    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      { weight: 4, arbitrary: wrongValue.map((value) => ({ kind: 'replace' as const, value })) },
      { weight: 2, arbitrary: fc.constant({ kind: 'delete' as const }) },
      { weight: 3, arbitrary: fc.tuple(awkwardKey, fc.jsonValue({ maxDepth: 2 })).map(([key, value]) => ({ kind: 'add key' as const, key, value })) },
      { weight: 3, arbitrary: unicode.map((value) => ({ kind: 'unicode' as const, value })) },
    );
    /** Long strings (under the body limit, over every field's) and deep nesting, anywhere in a valid body. */
    const sized: fc.Arbitrary<Mutation> = fc.oneof(
      fc.integer({ min: 10_001, max: limit - 2048 }).map((length) => ({ kind: 'long string' as const, length })),
      fc.integer({ min: MAX_PAYLOAD_DEPTH, max: (limit - 2048) / 2 }).map((depth) => ({ kind: 'deep' as const, depth })),
    );

    const mutated = (m: fc.Arbitrary<Mutation>) =>
      model.valid
        .chain((v) => fc.tuple(fc.constant(v), fc.constantFrom(...pathsOf(v)), m))
        .map(([v, path, mutation]) => classify(`${mutation.kind} at ${path.join('.') || '(root)'}`, mutate(v, path, mutation)))
        .filter(defined);
    const protoKeys = model.valid
      .chain((v) => fc.tuple(fc.constant(v), fc.constantFrom(...pathsOf(v).filter((p) => isObject(valueAt(v, p)))), fc.constantFrom(...PROTO_KEYS), protoValue))
      .map(([v, path, key, value]) => classify(`${key} key at ${path.join('.') || '(root)'}`, mutate(v, path, { kind: 'add key', key, value })))
      .filter(defined);
    const tooDeep = fc
      .integer({ min: MAX_PAYLOAD_DEPTH, max: (limit - 512) / 2 })
      .map((d) => invalidCase(`payload nested ${d + 1} deep`, send(model.deep(d)), [400]));
    const overLimit = fc.tuple(validText, fc.integer({ min: 1, max: 2 * limit }), fc.constantFrom('leading', 'trailing', 'string')).map(([t, extra, where]) => {
      const pad = limit - Buffer.byteLength(t) + extra;
      const x = 'x'.repeat(pad);
      const body = where === 'leading' ? ' '.repeat(pad) + t : where === 'trailing' ? t + '\n'.repeat(pad) : t.startsWith('{') ? `{"pad":"${x}",${t.slice(1)}` : `"${x}"`;
      return invalidCase(`body ${Buffer.byteLength(body)} bytes, over the ${limit} limit`, send(body), [413]);
    });
    const badJson = fc
      .oneof(
        malformed,
        validText.chain((t) => fc.integer({ min: 1, max: t.length - 1 }).map((k) => t.slice(0, k))),
        validText.map((t) => `${t}}`),
        validText.filter((t) => t.includes('"')).map((t) => t.replace(/"/g, "'")),
      )
      .map((body) => invalidCase('malformed JSON', send(body), [400]));
    const contentType = fc
      .tuple(validText, fc.option(fc.constantFrom(...BAD_CONTENT_TYPES), { nil: undefined }))
      .map(([t, type]) => invalidCase(`content type ${type ?? '(none)'}`, send(t, type === undefined ? {} : { 'content-type': type }), [415]));
    // body-parser refuses a charset that is not utf-*; a utf-* one it decodes, into text that is not JSON.
    const charset = fc
      .tuple(validText, fc.constantFrom('latin1', 'iso-8859-1', 'us-ascii', 'windows-1252', 'bogus', 'utf-16', 'utf-16le', 'utf-32', 'utf-9'))
      .map(([t, cs]) => invalidCase(`charset ${cs}`, send(t, { 'content-type': `application/json; charset=${cs}` }), cs.startsWith('utf-') ? '4xx' : [415]));
    const encoding = fc.tuple(validText, fc.constantFrom('gzip', 'deflate', 'br', 'compress', 'x-custom', 'zstd')).map(([t, e]) => {
      const expect = ['gzip', 'deflate', 'br'].includes(e) ? [400] : e === 'zstd' ? '4xx' : [415];
      return invalidCase(`${e} Content-Encoding on a plain body`, send(t, { 'content-type': 'application/json', 'content-encoding': e }), expect);
    });
    const noBody = fc.constantFrom(undefined, '').map((body) => invalidCase(body === undefined ? 'no body' : 'empty body', send(body), [400]));

    const w = (weight: number, arbitrary: fc.Arbitrary<InvalidCase>): fc.WeightedArbitrary<InvalidCase> => ({ weight, arbitrary });
    const cases = [
      w(2, fc.jsonValue().map((v) => classify('random JSON', JSON.stringify(v))).filter(defined)),
      w(4, mutated(mutation)),
      w(2, mutated(sized)),
      w(2, protoKeys),
      w(1, tooDeep),
      w(1, overLimit),
      w(2, badJson),
      w(1, contentType),
      w(1, charset),
      w(1, encoding),
    ];
    if (model.options) cases.push(w(2, model.options.map((v) => classify('options the schema allows but the rules refuse', JSON.stringify(v))).filter(defined)));
    if (model.breaks) {
      const broken = model.breaks
        .map(({ why, body, field }) => {
          const c = classify(why, JSON.stringify(body));
          return c && c.expect !== '4xx' ? c : c && invalidCase(c.why, c.req, [400], field);
        })
        .filter(defined);
      cases.push(w(6, broken));
    }
    if (op.body === 'required') cases.push(w(1, noBody));
    return cases;
  }

  #badParams(op: Operation): fc.Arbitrary<InvalidCase> {
    const at = (values: Record<string, string>) => op.path.replace(/:([a-z]+)/g, (_, p: string) => values[p]!);
    if (op.params.includes('name')) {
      // With a payload its node would take, so that only the run id or the name is wrong.
      const run = this.#signalRun;
      const names = new Set<string>(Object.values(SIGNAL_NAMES));
      const signal = (id: string, name: string) => ({ ...postJson('', SIGNAL_TAKEN_PAYLOAD), path: at({ id, name }) });
      return fc.oneof(
        badSegment.filter((s) => decoded(s) !== run).map((id) => invalidCase('bad run id', signal(id, SIGNAL_NAMES.schema), '4xx')),
        badSegment.filter((s) => !names.has(decoded(s))).map((name) => invalidCase('bad signal name', signal(encodeURIComponent(run), name), '4xx')),
      );
    }
    if (op.params.includes('pool')) {
      const typeNames = new Set(this.valid.typeNames);
      return fc.oneof(
        badSegment.filter((s) => !typeNames.has(decoded(s))).map((type) => invalidCase('unknown agent type', { method: op.method, path: at({ type, pool: 'default' }) }, '4xx')),
        fc
          .tuple(fc.constantFrom(...typeNames), badSegment.filter((s) => !POOL_PATTERN.test(decoded(s))))
          .map(([type, pool]) => invalidCase('malformed pool name', { method: op.method, path: at({ type, pool }) }, '4xx')),
      );
    }
    if (op.path.startsWith('/v1/workers/')) {
      // With a body the route takes, so that only the id is wrong (and none names a worker: extend and results answer for any).
      return badSegment
        .filter((s) => !WORKER_ID.test(decoded(s)))
        .chain((id) => this.#workerRequest(op, id))
        .map((req) => invalidCase('bad worker id', req, '4xx'));
    }
    return badSegment.map((id) => invalidCase('bad id', { method: op.method, path: at({ id }) }, '4xx'));
  }

  /** A valid body for a worker's heartbeat, lease, extend or results request. */
  #workerBody(path: string): fc.Arbitrary<Record<string, unknown>> {
    switch (path) {
      case '/v1/workers/:id/heartbeat':
        return this.valid.heartbeat();
      case '/v1/workers/:id/leases':
        return this.valid.leaseBody();
      case '/v1/workers/:id/leases/extend':
        return this.valid.extendRequest();
      case '/v1/workers/:id/results':
        return this.valid.resultsRequest();
      default:
        throw new Error(`no worker body for ${path}`);
    }
  }

  /** A request to a worker's route (`segment`, the worker's id as it goes in the path) with what the route takes besides: no body for a DELETE, maybe none for a lease. */
  #workerRequest(op: Operation, segment: string): fc.Arbitrary<FuzzRequest> {
    const path = `/v1/workers/${segment}${op.path.slice('/v1/workers/:id'.length)}`;
    if (op.method === 'DELETE') return fc.constant({ method: 'DELETE', path });
    if (op.path === '/v1/workers/:id/leases') return fc.option(this.valid.leaseBody(), { nil: undefined }).map((b) => (b === undefined ? { method: 'POST', path } : postJson(path, b)));
    return this.#workerBody(op.path).map((b) => postJson(path, b));
  }

  /**
   * Requests refused for the worker they name, each with a body its route takes: an id that is no
   * worker's (a registered one's, edited) is a 404 on every route; one of an undeclared type a 404
   * (on extend and results, which read no registry, for the type); one not registered a 404 (but
   * extend and results answer for it, by design: a worker's leases outlive its registration); a single
   * result whose lease is not held is a 409, nothing written. A registration of an undeclared type: 404.
   */
  #workerCases(op: Operation): fc.Arbitrary<InvalidCase> {
    const types = new Set(this.valid.typeNames);
    const undeclared = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((t) => !types.has(t));
    const hex = fc.stringMatching(/^[0-9a-f]{12}$/);
    const notFound = (why: string, id: string, problem = '/problems/worker-not-found') =>
      this.#workerRequest(op, encodeURIComponent(id)).map((req) => invalidCase(why, req, [404], undefined, problem));
    if (op.path === '/v1/workers') {
      return fc
        .tuple(this.valid.workerRegistration(), undeclared)
        .map(([r, type]) => invalidCase(`a worker of undeclared type ${type}`, postJson(op.path, { ...r, type }), [404], undefined, '/problems/unknown-agent-type'));
    }
    const registered = new Set(this.valid.workers);
    const edited = fc
      .tuple(fc.constantFrom(...registered), fc.nat(), fc.constantFrom(...ID_EDITS))
      .map(([id, at, edit]) => edit(id, at % id.length))
      .filter((id) => !WORKER_ID.test(id))
      .chain((id) => notFound('not a worker id', id));
    const readsRegistry = op.path !== '/v1/workers/:id/leases/extend' && op.path !== '/v1/workers/:id/results';
    const ofUndeclared = fc
      .tuple(undeclared, fc.stringMatching(POOL_PATTERN), hex)
      .chain(([type, pool, h]) => notFound(`a worker of undeclared type ${type}`, `${type}.${pool}.http-${h}`, readsRegistry ? undefined : '/problems/unknown-agent-type'));
    const kinds = [edited, ofUndeclared];
    if (readsRegistry) {
      kinds.push(
        fc
          .tuple(fc.constantFrom(...types), fc.oneof(fc.constant(WORKER_FIXTURE.pool), fc.stringMatching(POOL_PATTERN)), hex)
          .map(([type, pool, h]) => `${type}.${pool}.http-${h}`)
          .filter((id) => !registered.has(id))
          .chain((id) => notFound('a worker not registered', id)),
      );
    }
    if (op.path === '/v1/workers/:id/results') {
      // To a registered worker, or an unregistered one of its pool, which the API has the parts of already.
      // Known gap, left to whoever owns src/agent/lease-desk.ts: one of a pool it has not seen has it build
      // and keep that pool's parts, which writes the queue's meta and stalled-check keys, 409 or not.
      const worker = fc.oneof(fc.constantFrom(...registered), hex.map((h) => `${WORKER_FIXTURE.type}.${WORKER_FIXTURE.pool}.http-${h}`).filter((id) => !registered.has(id)));
      kinds.push(
        fc
          .tuple(worker, this.valid.resultsRequest())
          .map(([id, b]) =>
            invalidCase('a single result whose lease is not held', postJson(`/v1/workers/${encodeURIComponent(id)}/results`, { results: (b.results as unknown[]).slice(0, 1) }), [409], undefined, '/problems/lease-lost'),
          ),
      );
    }
    return fc.oneof(...kinds);
  }

  /**
   * A valid worker body broken in one field on purpose, with the field the answer must name: each
   * field of a registration (an undeclared type is a 404 instead: #workerCases), a heartbeat's health,
   * load and leases, a lease request's max and wait (longer than the longest poll too), the leases of
   * an extend (none, too many, ill-formed), a result's status, error, retry and lease; a key none takes.
   */
  #workerBreak(op: Operation, valid: Record<string, unknown>): fc.Arbitrary<{ why: string; body: unknown; field: string | undefined }> {
    const edit = (why: string, field: string | undefined, change: (b: Record<string, unknown>) => void) => {
      const body = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
      change(body);
      return { why, body, field };
    };
    const bad = (field: string, values: readonly unknown[]) =>
      fc.constantFrom(...values).map((v) => edit(`bad ${field} ${JSON.stringify(v)?.slice(0, 40)}`, field, (b) => (b[field] = v)));
    const unknownKey = (...keys: string[]) => fc.constantFrom(...keys).map((key) => edit(`an unknown key ${JSON.stringify(key)}`, undefined, (b) => define(b, key, 1)));
    const refs = (n: number, more: Record<string, unknown> = {}) => Array.from({ length: n }, (_, i) => ({ task: `etl~${i}`, lease: 'l', ...more }));
    // Leases a heartbeat or an extend names, ill-formed (none at all is only an extend's mistake: a heartbeat may name none).
    const badLeases = ['l', null, {}, [null], [{}], [{ task: 'a' }], [{ task: '', lease: 'l' }], [{ task: 'a', lease: 'l'.repeat(301) }], [{ task: 't'.repeat(301), lease: 'l' }], [{ task: 'a', lease: 'l', state: 'extended' }], refs(MAX_LEASES_PER_REQUEST + 1)];
    switch (op.path) {
      case '/v1/workers':
        return fc.oneof(
          bad('type', ['', 'ETL', 'e tl', '-etl', 'x'.repeat(64), 5, null]),
          fc.constant(edit('no type', 'type', (b) => delete b.type)),
          bad('version', ['', '1', '1.0', '1.0.0.0', '01.0.0', 'latest', '^1.0.0', '1.0.0 - 2.0.0', 5, null]),
          bad('pool', ['', 'Fuzz', 'a_b', '-a', 'x'.repeat(64), 5, null]),
          bad('weight', [0, -0, -1, 1_000_001, '1', null, true]),
          bad('tags', ['t', null, [''], ['a b'], ['x'.repeat(65)], [5], Array.from({ length: 33 }, (_, i) => `t${i}`)]),
          bad('concurrency', [0, -1, 1.5, MAX_LEASES_PER_REQUEST + 1, '1', null]),
          bad('host', ['', 'h'.repeat(201), 5, null]),
          bad('metadata', [[], 'm', 5, null, true]),
          unknownKey('id', 'health', 'capabilities', 'pid', 'Type'),
        );
      case '/v1/workers/:id/heartbeat':
        return fc.oneof(
          bad('health', ['healthy', 'UNKNOWN', 'OK', '', 5, null]),
          fc.constant(edit('no health', 'health', (b) => delete b.health)),
          bad('reason', ['r'.repeat(501), 5, null]),
          bad('running', [-1, 1.5, 2 ** 53, '0', null]),
          bad('responseTimeMs', [-1, -0.001, '5', null]),
          bad('leases', badLeases),
          unknownKey('draining', 'load', 'id', 'Health'),
        );
      case '/v1/workers/:id/leases':
        return fc.oneof(
          bad('max', [0, -1, 1.5, MAX_LEASES_PER_REQUEST + 1, '1', null, true]),
          bad('waitMs', [-1, 1.5, MAX_LEASE_WAIT_MS + 1, 1e9, '0', null]),
          unknownKey('wait', 'timeoutMs', 'types', 'Max'),
        );
      case '/v1/workers/:id/leases/extend':
        return fc.oneof(bad('leases', [[], ...badLeases]), fc.constant(edit('no leases', 'leases', (b) => delete b.leases)), unknownKey('worker', 'lease', 'Leases'));
      case '/v1/workers/:id/results': {
        const item = (why: string, change: (r: Record<string, unknown>) => void) => edit(`results[0]: ${why}`, 'results[0]', (b) => change((b.results as Array<Record<string, unknown>>)[0]!));
        const failed = (r: Record<string, unknown>, more: Record<string, unknown>) => {
          delete r.result;
          Object.assign(r, { status: 'failed', error: r.error ?? 'e', ...more });
        };
        return fc.oneof(
          bad('results', [[], 'r', null, {}, [null], [{}], refs(MAX_LEASES_PER_REQUEST + 1, { status: 'completed' })]),
          fc.constant(edit('no results', 'results', (b) => delete b.results)),
          fc.constantFrom<unknown>('done', 'COMPLETED', 'retrying', '', 5, null).map((status) => item(`status ${JSON.stringify(status)}`, (r) => (r.status = status))),
          fc.constant(item('no status', (r) => delete r.status)),
          fc.constantFrom<unknown>('', 'e'.repeat(10_001), 5, null).map((error) => item(`failed with error ${JSON.stringify(error).slice(0, 40)}`, (r) => failed(r, { error }))),
          fc.constant(
            item('failed without an error', (r) => {
              failed(r, {});
              delete r.error;
            }),
          ),
          fc.constantFrom<unknown>('never', 'RETRYABLE', '', null, true).map((retry) => item(`retry ${JSON.stringify(retry)}`, (r) => failed(r, { retry }))),
          fc.constantFrom<unknown>(-1, 1.5, 24 * 3_600_000 + 1, '1000', null).map((retryAfterMs) => item(`retryAfterMs ${JSON.stringify(retryAfterMs)}`, (r) => failed(r, { retryAfterMs }))),
          fc.constant(item('failed with a result', (r) => failed(r, { result: {} }))),
          fc.constant(item('completed with an error', (r) => Object.assign(r, { status: 'completed', error: 'e' }))),
          fc.constantFrom<unknown>('', 't'.repeat(301), 5, null).map((task) => item(`task ${JSON.stringify(task).slice(0, 40)}`, (r) => (r.task = task))),
          fc.constantFrom<unknown>('', 'l'.repeat(301), 5, null).map((lease) => item(`lease ${JSON.stringify(lease).slice(0, 40)}`, (r) => (r.lease = lease))),
          unknownKey('worker', 'result', 'Results'),
        );
      }
      default:
        throw new Error(`no worker breaks for ${op.id}`);
    }
  }

  #queryCases(op: Operation): Array<fc.Arbitrary<InvalidCase>> {
    const keys: Record<string, readonly string[]> = {
      '/v1/dlq': ['type', 'pool', 'error', 'since', 'until', 'limit'],
      '/v1/agents': ['type', 'pool', 'health', 'tag', 'capability'],
      '/v1/pools': ['type'],
      '/v1/workflows': ['limit'],
      '/v1/workflows/:id': ['nodeOffset', 'nodeLimit'],
      '/v1/schedules': ['offset', 'limit'],
      '/v1/events': ['type', 'run', 'task', 'lastEventId'],
    };
    const known = keys[op.path]!;
    const base = this.valid.query(op.path);
    const rawValue = fc.oneof(
      text(0, 30).map(encodeLoose),
      fc.string({ unit: 'grapheme', maxLength: 10 }).map(encodeLoose),
      unicode.map(encodeLoose),
      fc.constantFrom('%', '%E0%A4%A', '%ZZ', '%00', '%ED%A0%80', '%FF', '-1', '0', '1e999', 'NaN', '1001', '0x10', '%205', '2020-13-01T00:00:00Z', '2020-01-01', 'yesterday'),
      fc.constantFrom('healthy', 'HEALTHY,BOGUS', 'x@', '@1', 'a@%5E%5E1', 'A@1', 'echo@', 'Echo', '-x', 'a_b', '%2C%2C', 'tag%20with%20space'),
      fc.integer({ min: 200, max: 6000 }).map((n) => 'x'.repeat(n)),
    );
    // GET /v1/events documents its refusals: a 400 naming the field (or the unknown key) that is wrong.
    const named = op.path === '/v1/events';
    const classify = (why: string, q: string, name?: { field: string } | { key: string }) => {
      if (queryIsValid(op.path, q)) return undefined;
      const req = { method: 'GET', path: `${op.path}?${q}` };
      if (!named || name === undefined) return invalidCase(why, req, '4xx');
      return 'field' in name ? invalidCase(why, req, [400], name.field) : invalidCase(why, req, [400], undefined, undefined, name.key);
    };
    const defined = (c: InvalidCase | undefined): c is InvalidCase => c !== undefined;
    const join = (a: string, b: string) => (a ? `${a}&${b}` : b);
    /** The key as the server reads it (percent-decoded; `a[b]` stays as is): a known one is then a bad value, not an unknown key. */
    const readKey = (raw: string) => Object.keys(parseQuery(`${raw}=`))[0] ?? raw;
    return [
      fc
        .tuple(base, awkwardKey.map(encodeLoose), fc.constantFrom('a%5Bb%5D', 'limit%5B%5D', 'a[b]', 'x'), text(0, 10).map(encodeLoose))
        .map(([q, key, bracket, value]) => {
          const k = readKey(key || bracket);
          return classify('unknown query key', join(q, `${key || bracket}=${value}`), known.includes(k) ? { field: k } : { key: k });
        })
        .filter(defined),
      fc
        .tuple(base, fc.constantFrom(...known), rawValue, fc.boolean())
        .map(([q, key, value, alone]) => classify(`bad ${key}`, alone ? `${key}=${value}` : join(q, `${key}=${value}`), { field: key }))
        .filter(defined),
    ];
  }

  /** Timing fields straight from the patch schema's JSON Schema (any combination, in any order), crons and time zones both real and random. */
  get #rawTiming(): fc.Arbitrary<Record<string, unknown>> {
    const schema = z.toJSONSchema(schedulePatchSchema.omit({ task: true, workflow: true }), { io: 'input', unrepresentable: 'any' }) as JsonSchema;
    const overrides = { cron: fc.oneof(cronExpression, text(0, 30)), timeZone: fc.oneof(timeZone, text(0, 20)) };
    return arbitraryOf(schema, { overrides }) as fc.Arbitrary<Record<string, unknown>>;
  }

  /**
   * A valid schedule (or patch) broken in one field on purpose, with the field the answer must name:
   * a cron, a time zone, an interval, an instant, an id, a name, a misfire policy that the schema
   * refuses; both or neither of cron and everyMs, of task and workflow; a time zone with an interval;
   * an end not after the start; what it fires refused as if sent by hand (an unknown type, a payload
   * its type refuses, the options each fire sets itself, a workflow that is no DAG).
   */
  #scheduleBreak(valid: Record<string, unknown>, patch: boolean): fc.Arbitrary<{ why: string; body: unknown; field: string | undefined }> {
    const edit = (why: string, field: string | undefined, change: (b: Record<string, unknown>) => void) => {
      const body = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
      change(body);
      return { why, body, field };
    };
    const bad = (field: string, values: readonly unknown[], change: (b: Record<string, unknown>) => void = () => undefined) =>
      fc.constantFrom(...values).map((v) =>
        edit(`bad ${field} ${JSON.stringify(v)?.slice(0, 40)}`, field, (b) => {
          change(b);
          b[field] = v;
        }),
      );
    const toCron = (b: Record<string, unknown>) => {
      delete b.everyMs;
      if (typeof b.cron !== 'string') b.cron = '0 0 1 1 *';
    };
    const toInterval = (b: Record<string, unknown>) => {
      delete b.cron;
      delete b.timeZone;
    };
    const day = 86_400_000;
    const task = this.valid.scheduledTask();
    const breaks: Array<fc.Arbitrary<{ why: string; body: unknown; field: string | undefined }>> = [
      bad('cron', ['61 * * * *', '* * *', '* * * * * * *', '0 0 30 2 *', 'every day', '', ' ', '@daily', '0 0 1W 1 *', '* * * * 8', '*/0 * * * *', '0 0 1 13 *', '0 24 * * *', `0 0 1 1 ${'*'.repeat(200)}`, 5, null, ['0 0 1 1 *']], (b) => delete b.everyMs),
      bad('timeZone', ['Mars/Olympus', 'Europe/Berlinn', 'UTC+1', 'Z', '', 'Local', `Europe/${'x'.repeat(60)}`, 1, null], toCron),
      bad('everyMs', [0, -1, -3_600_000, 999, 1.5, 3_600_000.5, 366 * day + 1, 1e21, '3600000', null, true], toInterval),
      ...['startAt', 'endAt'].map((k) => bad(k, ['2091-01-01', '2091-02-30T00:00:00Z', '2091-01-01T24:00:00Z', '2091-01-01T00:00:00', '2091-01-01 00:00:00Z', 'tomorrow', 3_818_448_000_000, null])),
      bad('name', ['', 'x'.repeat(201), 5, null]),
      bad('misfire', ['never', 'ONCE', '', true]),
      bad('paused', ['yes', 'true', 1, null]),
      fc.tuple(futureInstant, fc.constantFrom(0, 1, 1000, day)).map(([start, back]) =>
        edit(`endAt ${back} ms before startAt`, 'endAt', (b) => {
          b.startAt = start;
          b.endAt = new Date(Date.parse(start) - back).toISOString();
        }),
      ),
      fc.constant(edit('both cron and everyMs', 'cron', (b) => Object.assign(b, { cron: '0 0 1 1 *', everyMs: 3_600_000 }))),
      timeZone.map((tz) => edit('a time zone with an interval', 'timeZone', (b) => Object.assign(b, { cron: undefined, everyMs: 3_600_000, timeZone: tz }))),
      fc.constant(edit('both task and workflow', 'task', (b) => Object.assign(b, { task: { type: 'echo', payload: {} }, workflow: { nodes: [{ id: 'a', type: 'echo', payload: {} }] } }))),
      bad('task', ['echo', 5, [], null]),
      fc.constantFrom('nope', 'Not A Type', '').map((type) =>
        edit(`a task of type ${JSON.stringify(type)}`, 'task.type', (b) => {
          b.task = { type, payload: {} };
          delete b.workflow;
        }),
      ),
      fc.tuple(fc.constantFrom(...this.valid.typeNames), fc.constantFrom<unknown>(5, 'x', [], null, true, { message: 5 }, { text: 5 }, { to: 'not an address' })).map(([type, payload]) =>
        edit(`a ${type} payload its type refuses`, 'task.payload', (b) => {
          b.task = { type, payload };
          delete b.workflow;
        }),
      ),
      fc.tuple(task, fc.constantFrom<Record<string, unknown>>({ idempotencyKey: 'k' }, { delayMs: 1000 })).map(([t, o]) =>
        edit(`a scheduled task with ${Object.keys(o)[0]}`, 'task', (b) => {
          b.task = { ...t, ...o };
          delete b.workflow;
        }),
      ),
      fc.constantFrom<Record<string, unknown>>(
        { idempotencyKey: 'k', nodes: [{ id: 'a', type: 'echo', payload: {} }] },
        { nodes: [{ id: 'a', type: 'nope', payload: {} }] },
        { nodes: [{ id: 'a', type: 'echo', payload: {}, dependsOn: ['b'] }, { id: 'b', type: 'echo', payload: {}, dependsOn: ['a'] }] },
        { nodes: [{ id: 'a', type: 'echo', payload: {} }, { id: 'a', type: 'echo', payload: {} }] },
        { nodes: [] },
      ).map((workflow) =>
        edit(`a workflow refused: ${JSON.stringify(workflow).slice(0, 60)}`, 'workflow', (b) => {
          b.workflow = workflow;
          delete b.task;
        }),
      ),
    ];
    if (patch) {
      breaks.push(fc.constant(edit('an id in a patch', undefined, (b) => (b.id = 'renamed'))));
    } else {
      breaks.push(
        bad('id', ['has space', '', 'a'.repeat(41), 'a_b', 'é', 'a/b', 'a.b', 5, null]),
        fc.constant(edit('neither cron nor everyMs', 'cron', (b) => toInterval(Object.assign(b, { everyMs: undefined })))),
        fc.constant(edit('neither task nor workflow', 'task', (b) => Object.assign(b, { task: undefined, workflow: undefined }))),
      );
    }
    return fc.oneof(...breaks);
  }

  /**
   * A valid workflow broken in its map node (`nodes[index]`) on purpose, with the field the answer
   * must name: `over` naming a node that is not one of its dependencies (another node of the run, or
   * none) or given no dependencies at all, `over` or `payloadFrom` not the documented paths, a type
   * not declared, a concurrency or a tolerateFailures out of range, a per-task option out of range,
   * a field a map does not take (a compensation, a payload, a lone task's options: the node is named).
   */
  #mapBreak(valid: Record<string, unknown>, index: number): fc.Arbitrary<{ why: string; body: unknown; field: string | undefined }> {
    const base = `nodes[${index}]`;
    const edit = (why: string, field: string | undefined, change: (n: Record<string, unknown>) => void) => {
      const body = JSON.parse(JSON.stringify(valid)) as { nodes: Array<Record<string, unknown>> };
      change(body.nodes[index]!);
      return { why: `map node ${base}: ${why}`, body, field: field === undefined ? base : `${base}.${field}` };
    };
    const bad = (field: string, values: readonly unknown[]) =>
      fc.constantFrom(...values).map((v) => edit(`bad ${field} ${JSON.stringify(v)?.slice(0, 40)}`, field, (n) => (n[field] = v)));
    const nodes = valid.nodes as Array<Record<string, unknown>>;
    const map = nodes[index]!;
    const deps = map.dependsOn as string[];
    const source = String(map.over).split('.')[0]!;
    const path = String(map.over).slice(source.length);
    const others = nodes.map((n) => String(n.id)).filter((id) => !deps.includes(id));
    return fc.oneof(
      fc
        .oneof(fc.constantFrom(...others), fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/))
        .filter((id) => !deps.includes(id))
        .map((id) => edit(`over ${JSON.stringify(id)}, not a dependency`, 'over', (n) => (n.over = `${id}${path}`))),
      fc.constant(
        edit('over with no dependencies', 'over', (n) => {
          delete n.dependsOn;
          delete n.when;
        }),
      ),
      bad('over', ['', '.', `${source}.`, `.${source}`, `${source}..items`, `${source}.${'x'.repeat(500)}`, 5, null, [source]]),
      fc.constant(edit('no over', 'over', (n) => delete n.over)),
      bad('type', ['nope', 'Not A Type', '', 5, null]),
      fc.constant(edit('no type', 'type', (n) => delete n.type)),
      bad('concurrency', [0, -1, 1001, 1.5, '10', null, true]),
      bad('tolerateFailures', [-1, 10_001, 0.5, '0', null]),
      bad('payloadFrom', ['', 'items', 'item.', 'item..job', '.item', 'x.item', 'Item', 5, null]),
      bad('attempts', [0, 101, 1.5]),
      bad('timeoutMs', [0, 86_400_001]),
      bad('priority', [-1, 2 ** 21]),
      bad('pool', ['Bad Pool', '']),
      fc
        .constantFrom<[string, unknown]>(['compensate', {}], ['compensate', { type: 'echo' }], ['payload', {}], ['delayMs', 1000], ['idempotencyKey', 'k'], ['concurrencyKey', 'k'], ['items', []])
        .map(([key, value]) => edit(`a field a map does not take: ${key}`, undefined, (n) => (n[key] = value))),
    );
  }

  /** The run of SIGNAL_FIXTURE (api.test.ts starts it before the refusals). */
  get #signalRun(): string {
    if (this.ctx.signalRun === undefined) throw new Error('fuzz: the signal fixture run was not started (api.test.ts beforeAll)');
    return this.ctx.signalRun;
  }

  /**
   * A payload SIGNAL_SCHEMA takes, broken in one field on purpose, with the field the answer must
   * name: a decision it does not know or none, an amount out of range, an empty or long `by`, tags
   * that are not short strings, a note that is no string, a key it does not know; or the whole
   * payload of the wrong type (an array is a payload, but not the one the schema wants; a bare value
   * is none at all, so no field).
   */
  #signalBreak(valid: unknown): fc.Arbitrary<{ why: string; body: unknown; field: string | undefined }> {
    const edit = (why: string, field: string | undefined, change: (b: Record<string, unknown>) => void) => {
      const body = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
      change(body);
      return { why, body, field };
    };
    const bad = (field: string, values: readonly unknown[]) =>
      fc.constantFrom(...values).map((v) => edit(`bad ${field} ${JSON.stringify(v).slice(0, 40)}`, `payload.${field}`, (b) => (b[field] = v)));
    return fc.oneof(
      bad('decision', ['maybe', 'APPROVE', 'approve ', '', 5, null, true, ['approve'], {}]),
      fc.constant(edit('no decision', 'payload.decision', (b) => delete b.decision)),
      bad('amount', [-1, -0.001, 1000.5, 1e6, '5', null, true, []]),
      bad('by', ['', 'x'.repeat(41), 5, null, ['ada']]),
      bad('tags', ['a', [1], [null], ['x'.repeat(21)], ['a', 'b', 'c', 'd', 'e', 'f'], {}]),
      bad('note', [5, true, {}, [], 'x'.repeat(201)]),
      fc.constantFrom('extra', 'Decision', '__proto__', 'constructor', '').map((key) => edit(`an unknown key ${JSON.stringify(key)}`, 'payload', (b) => Object.defineProperty(b, key, { value: 1, enumerable: true }))),
      fc.constantFrom<unknown>([valid], [], [{ decision: 'approve' }]).map((body) => ({ why: 'an array where the schema wants an object', body, field: 'payload' })),
      fc.constantFrom<unknown>('approve', 5, true, null).map((body) => ({ why: 'a bare JSON value', body, field: undefined })),
    );
  }

  /**
   * Signals to the fixture run refused for what they are, not their body's shape: a bare JSON value
   * or a body nested too deep to the node without a schema (a payload is an object or an array, no
   * deeper than any other), a second signal to the node that has one kept (409, even with a payload
   * it would refuse: then a 400 will do), a name the run has no node of, or a run that does not exist
   * (404, whatever the payload).
   */
  #signalCases(): fc.Arbitrary<InvalidCase> {
    const run = this.#signalRun;
    const limit = this.ctx.maxBodyBytes;
    const names = new Set<string>(Object.values(SIGNAL_NAMES));
    const send = (id: string, name: string, body: string): FuzzRequest => ({ method: 'POST', path: signalPath(id, name), headers: { 'content-type': 'application/json' }, body });
    const payload = this.valid.signalPayload(SIGNAL_SCHEMA).map((p) => JSON.stringify(p));
    const bare = fc.oneof(
      fc.constantFrom<unknown>(null, true, false, 0, -0, 1, '', 'approve', '{}', '[]'),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      text(0, 40),
    );
    const deep = fc
      .tuple(fc.integer({ min: MAX_PAYLOAD_DEPTH, max: (limit - 512) / 2 }), fc.boolean())
      .map(([d, array]) => (array ? deepText(d + 1) : `{"k":${deepText(d)}}`));
    return fc.oneof(
      bare.map((v) => invalidCase('a bare JSON value, not an object or array', send(run, SIGNAL_NAMES.open, JSON.stringify(v)), [400])),
      deep.map((body) => invalidCase(`a payload nested ${MAX_PAYLOAD_DEPTH + 1} or more deep`, send(run, SIGNAL_NAMES.open, body), [400])),
      payload.map((body) => invalidCase('a second signal (one is kept for the node)', send(run, SIGNAL_NAMES.taken, body), [409], undefined, '/problems/signal-taken')),
      this.#signalBreak(SIGNAL_TAKEN_PAYLOAD).map(({ why, body }) => invalidCase(`a second signal, ${why}`, send(run, SIGNAL_NAMES.taken, JSON.stringify(body)), [400, 409])),
      fc
        .tuple(fc.oneof(fc.stringMatching(SIGNAL_NAME_PATTERN), text(1, 120)), payload)
        .filter(([name]) => !names.has(name))
        .map(([name, body]) => invalidCase('no signal node of that name', send(run, name, body), [404], undefined, '/problems/signal-not-found')),
      fc
        .tuple(fc.oneof(fc.stringMatching(RUN_ID_PATTERN), text(1, 80)), fc.constantFrom(...names), payload)
        .filter(([id]) => id !== run)
        .map(([id, name, body]) => invalidCase('no such run', send(id, name, body), [404], undefined, '/problems/workflow-not-found')),
    );
  }

  /**
   * GET /v1/events with a Last-Event-ID header that is no event id (`<ms>-<seq>` of at most 15 digits
   * each, then maybe `.<index>` of at most 6; printable Latin-1, what a header carries) and a query
   * that is fine otherwise: a 400 naming `lastEventId`, which the header stands for. Also a good
   * header beside a bad `lastEventId` in the query (the query's is the one read). The oracle judges a
   * header both as sent and with the padding the server's parser trims.
   */
  #lastEventIdHeader(op: Operation): fc.Arbitrary<InvalidCase> {
    const base = this.valid.query(op.path).filter((q) => parseQuery(q).lastEventId === undefined);
    const header = fc.oneof(
      fc.constantFrom('', ' ', '0', '-', '0-', '-0', '1-1-1', '1_1', '1 - 1', '1-1,2-2', '1-1, 2-2', 'null', 'undefined', '1e3-0', '0x1-0', '+1-0', '1-+1', '1.5-0', '1-0.5', '-1-0', '1--1', '$', '*'),
      fc.constantFrom('0-0\u00a0', '1-0.', '1-0.1234567', '1-0.-1', '1-0.1.2', '.1', '1-0..1', '1234567890123456-0', '0-1234567890123456', '99999999999999999999-0', `${Date.now()}`, `${Date.now()}-`, `${Date.now()}-0-0`),
      fc.stringMatching(/^[\x20-\x7e\xa0-\xff]{0,40}$/),
      fc.tuple(fc.stringMatching(EVENT_ID), fc.nat(40), fc.stringMatching(/^[\x21-\x2f\x3a-\x7e\xa0-\xff]{1,3}$/)).map(([id, at, bad]) => `${id.slice(0, at)}${bad}${id.slice(at)}`),
    );
    const trimmed = (h: string) => h.replace(/^[ \t]+|[ \t]+$/g, '');
    const refused = (q: string, h: string) => eventsQueryOf(q, h) === undefined && eventsQueryOf(q, trimmed(h)) === undefined;
    return fc.oneof(
      fc
        .tuple(fc.option(base, { nil: undefined }), header)
        .filter(([q, h]) => refused(q ?? '', h))
        .map(([q, h]) => invalidCase('bad Last-Event-ID header', { method: 'GET', path: q ? `${op.path}?${q}` : op.path, headers: { 'last-event-id': h } }, [400], 'lastEventId')),
      fc
        .tuple(fc.stringMatching(EVENT_ID), header.map(encodeLoose))
        .filter(([h, q]) => refused(`lastEventId=${q}`, h))
        .map(([h, q]) => invalidCase('bad lastEventId beside a good Last-Event-ID', { method: 'GET', path: `${op.path}?lastEventId=${q}`, headers: { 'last-event-id': h } }, [400], 'lastEventId')),
    );
  }

  /** GET, PATCH and DELETE of a schedule that does not exist (a well-formed id): 404, whatever the body. */
  #unknownSchedule(op: Operation): fc.Arbitrary<InvalidCase> {
    return fc.tuple(fc.stringMatching(/^[A-Za-z0-9-]{1,34}$/), this.valid.schedulePatch({ ...SCHEDULE_FIXTURE })).map(([id, patch]) => {
      const path = `/v1/schedules/nope-${id}`;
      return invalidCase('no such schedule', op.method === 'PATCH' ? { ...postJson(path, patch), method: 'PATCH' } : { method: op.method, path }, [404]);
    });
  }

  #extraSegments(op: Operation): fc.Arbitrary<InvalidCase> {
    return fc
      .array(badSegment.filter((s) => s.length < 2000), { minLength: 1, maxLength: 2 })
      .map((segments) => invalidCase('no such path', { method: op.method, path: `${op.path}/${segments.join('/')}` }, '4xx'));
  }
}
