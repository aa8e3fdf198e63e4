/**
 * Requests the API must accept, one arbitrary per operation. Payloads come from the JSON Schemas the
 * API publishes (GET /v1/agent-types), task options and filters from the request schemas in src/,
 * through schema-arbitrary.ts; what needs state first (a task to read, a dead task to replay) is made
 * by the case itself, so every case stands alone and fast-check can shrink it.
 */
import fc from 'fast-check';
import { z } from 'zod';
import type { AgentTypeDescription, Catalogue } from '../../src/model/catalogue.ts';
import { HEALTH_STATES } from '../../src/model/health-state.ts';
import { NAME_PATTERN } from '../../src/model/names.ts';
import { deadLetterFilterSchema } from '../../src/task/dead-letters.ts';
import { MAX_PAYLOAD_DEPTH, taskRequestSchema } from '../../src/model/task-request.ts';
import { nodeSchema } from '../../src/model/workflow-definition.ts';
import type { Operation } from './document.ts';
import type { FuzzRequest } from './http.ts';
import { batchIsValid, type Limits, queryIsValid, replayFilterIsValid, taskIsValid, workflowIsValid } from './oracle.ts';
import { arbitraryOf, type JsonSchema, text } from './schema-arbitrary.ts';

export interface FuzzContext {
  catalogue: Catalogue;
  limits: Limits;
  maxBodyBytes: number;
  /** Agents registered for the run (POST /v1/agents/:id/drain needs live ones). */
  agentIds: readonly string[];
}

export interface Fixtures {
  /** Sends a request that must succeed (a case's setup) and returns its JSON answer. */
  accepted(req: FuzzRequest): Promise<Record<string, unknown>>;
  /** Makes a dead task of `type` with `payload` (attempts spent), returning its id. */
  dead(type: string, payload: unknown): Promise<string>;
}

export interface Prepared {
  req: FuzzRequest;
  /** Checks beyond the document's schema; returns what is wrong, if anything. */
  check?: (body: unknown, headers: Record<string, string | string[] | undefined>) => string | undefined;
}

export interface ValidCase {
  readonly input: unknown;
  prepare(fx: Fixtures): Promise<Prepared>;
}

const validCase = (input: unknown, prepare: (fx: Fixtures) => Promise<Prepared>): ValidCase =>
  Object.assign({ input, prepare }, { [fc.toStringMethod]: () => fc.stringify(input) });

export const POOL_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

const jsonSchemaOf = (schema: z.ZodType): JsonSchema => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/** Content types the API takes as JSON. */
const jsonContentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON', 'application/vnd.switchyard+json');

export const postJson = (path: string, body: unknown, contentType = 'application/json'): FuzzRequest => ({
  method: 'POST',
  path,
  headers: { 'content-type': contentType },
  body: JSON.stringify(body),
});

const semverRange = fc.oneof(
  fc.constantFrom('*', '^1', '^1.0.0', '~1.0', '1.x', '>=1.0.0 <2.0.0', '1.0.0 - 2.0.0', '<1.0.0 || >=1.0.0', 'x'),
  fc.tuple(fc.constantFrom('', '^', '~', '>=', '<', '='), fc.nat(20), fc.nat(20), fc.nat(20)).map(([op, a, b, c]) => `${op}${a}.${b}.${c}`),
);

/** Objects nested `depth` levels (the payload itself is level 1): the deepest payload accepted is MAX_PAYLOAD_DEPTH. */
export function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) v = { k: v };
  return v;
}

export class ValidRequests {
  readonly #types: readonly AgentTypeDescription[];
  readonly #payloads = new Map<string, fc.Arbitrary<unknown>>();
  readonly #taskOptions: fc.Arbitrary<Record<string, unknown>>;
  readonly #nodeOptions: fc.Arbitrary<Record<string, unknown>>;

  /**
   * Numbers each generated idempotencyKey: the same key sent again with another request is refused
   * (422, by design: tests/integration/idempotency.test.ts), so each valid request gets a key of its own.
   */
  #keys = 0;
  #freshKey = (key: string): string => `${key.slice(0, 180)}.${++this.#keys}`;

  constructor(private readonly ctx: FuzzContext) {
    // The payload schemas as GET /v1/agent-types publishes them: the document clients write against.
    this.#types = ctx.catalogue.describe();
    for (const t of this.#types) {
      const type = ctx.catalogue.get(t.name);
      this.#payloads.set(t.name, arbitraryOf(t.payloadSchema as JsonSchema).filter((p) => type.payload.safeParse(p).success));
    }
    const overrides = { version: semverRange };
    this.#taskOptions = arbitraryOf(jsonSchemaOf(taskRequestSchema.omit({ type: true, payload: true })), { overrides }) as fc.Arbitrary<Record<string, unknown>>;
    this.#nodeOptions = arbitraryOf(jsonSchemaOf(nodeSchema.omit({ type: true, payload: true, id: true, dependsOn: true, compensate: true })), { overrides }) as fc.Arbitrary<
      Record<string, unknown>
    >;
  }

  /** Task options straight from the request schema's JSON Schema: some break rules it cannot state (a backoff that does not resolve). */
  get rawTaskOptions(): fc.Arbitrary<Record<string, unknown>> {
    return this.#taskOptions;
  }

  /** The same for workflow nodes, which take a task's options. */
  get rawNodeOptions(): fc.Arbitrary<Record<string, unknown>> {
    return this.#nodeOptions;
  }

  payload(type: string): fc.Arbitrary<unknown> {
    return this.#payloads.get(type)!;
  }

  get typeNames(): string[] {
    return this.#types.map((t) => t.name);
  }

  /** A task request; `keyed: false` leaves out idempotencyKey (a case that reads back what it made must make something new). */
  task({ keyed = true } = {}): fc.Arbitrary<Record<string, unknown>> {
    const generated = fc
      .constantFrom(...this.typeNames)
      .chain((type) => fc.tuple(this.payload(type), this.#taskOptions).map(([payload, o]): Record<string, unknown> => ({ type, payload, ...o })))
      .map((t) => {
        const { idempotencyKey, ...rest } = t;
        return keyed && typeof idempotencyKey === 'string' ? { ...rest, idempotencyKey: this.#freshKey(idempotencyKey) } : rest;
      });
    const limit = this.ctx.maxBodyBytes;
    return fc
      .oneof(
        { weight: 18, arbitrary: generated },
        // At the edges: the deepest payload accepted, and a body just under the size limit.
        { weight: 1, arbitrary: fc.integer({ min: MAX_PAYLOAD_DEPTH - 8, max: MAX_PAYLOAD_DEPTH }).map((d) => ({ type: 'echo', payload: nested(d) })) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 1024 }).map((slack) => ({ type: 'echo', payload: { blob: 'x'.repeat(limit - slack - 64) } })) },
      )
      .filter((t) => taskIsValid(this.ctx.catalogue, t));
  }

  batch(): fc.Arbitrary<{ tasks: Record<string, unknown>[] }> {
    return fc
      .array(this.task(), { minLength: 1, maxLength: 4 })
      .map((tasks) => ({ tasks }))
      .filter((b) => Buffer.byteLength(JSON.stringify(b)) <= this.ctx.maxBodyBytes && batchIsValid(this.ctx.catalogue, this.ctx.limits, b));
  }

  #node(id: string, earlier: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
    const compensation = (type: string) =>
      fc.oneof(
        fc.constant({}),
        this.payload(type).map((payload) => ({ payload })),
        fc.constantFrom(...this.typeNames).chain((undo) => this.payload(undo).map((payload) => ({ type: undo, payload }))),
      );
    return fc.constantFrom(...this.typeNames).chain((type) =>
      fc
        .record({
          payload: this.payload(type),
          options: this.#nodeOptions,
          dependsOn: fc.subarray([...earlier]),
          compensate: fc.option(compensation(type), { nil: undefined }),
        })
        .filter(({ payload, options }) => taskIsValid(this.ctx.catalogue, { type, payload, ...options }))
        .map(({ payload, options, dependsOn, compensate }) => ({
          id,
          type,
          payload,
          ...options,
          ...(dependsOn.length ? { dependsOn } : {}),
          ...(compensate ? { compensate } : {}),
        })),
    );
  }

  /** A DAG by construction (each node depends on earlier ones only), then listed in any order. */
  workflow({ keyed = true } = {}): fc.Arbitrary<Record<string, unknown>> {
    return fc
      .uniqueArray(fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/), { minLength: 1, maxLength: 5 })
      .chain((ids) => fc.tuple(...ids.map((id, i) => this.#node(id, ids.slice(0, i)))))
      .chain((nodes) => fc.shuffledSubarray(nodes, { minLength: nodes.length, maxLength: nodes.length }))
      .chain((nodes) =>
        fc
          .record({ name: text(1, 40), idempotencyKey: fc.stringMatching(/^[\x21-\x7e]{1,40}$/) }, { requiredKeys: [] })
          .map(({ idempotencyKey, ...rest }) => ({ ...rest, ...(keyed && idempotencyKey !== undefined ? { idempotencyKey: this.#freshKey(idempotencyKey) } : {}), nodes })),
      )
      .filter((w) => workflowIsValid(this.ctx.catalogue, this.ctx.limits, w));
  }

  filter(): fc.Arbitrary<Record<string, unknown>> {
    return (arbitraryOf(jsonSchemaOf(deadLetterFilterSchema)) as fc.Arbitrary<Record<string, unknown>>).filter(replayFilterIsValid);
  }

  /** A query for GET /v1/dlq, /v1/agents, /v1/pools or /v1/workflows, as a client would write it. */
  query(path: string): fc.Arbitrary<string> {
    const name = fc.oneof(fc.constantFrom(...this.typeNames), fc.stringMatching(NAME_PATTERN));
    const pool = fc.oneof(fc.constantFrom('default', 'fuzz', 'dlq'), fc.stringMatching(POOL_PATTERN));
    const list = <T extends string>(items: fc.Arbitrary<T[]>) => items.chain((xs) => fc.constantFrom<string | string[]>(xs.join(','), xs));
    let model: fc.Arbitrary<Record<string, unknown>>;
    switch (path) {
      case '/v1/dlq':
        model = this.filter();
        break;
      case '/v1/pools':
        model = fc.record({ type: name }, { requiredKeys: [] });
        break;
      case '/v1/workflows':
        model = fc.record({ limit: fc.integer({ min: 1, max: 100 }) }, { requiredKeys: [] });
        break;
      case '/v1/workflows/:id':
        model = fc.record({ nodeOffset: fc.nat(2000), nodeLimit: fc.integer({ min: 0, max: 1000 }) }, { requiredKeys: [] });
        break;
      case '/v1/agents':
        model = fc.record(
          {
            type: name,
            pool,
            health: list(fc.subarray([...HEALTH_STATES])),
            tag: list(fc.array(fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/), { maxLength: 3 })),
            capability: fc.oneof(name, fc.tuple(name, semverRange).map(([n, r]) => `${n}@${r}`)),
          },
          { requiredKeys: [] },
        );
        break;
      default:
        throw new Error(`no query model for ${path}`);
    }
    return model.map(toQuery).filter((q) => queryIsValid(path, q));
  }

  /** The valid cases of one operation. */
  cases(op: Operation): fc.Arbitrary<ValidCase> {
    const get = (path: string): FuzzRequest => ({ method: 'GET', path });
    const idOf = (body: Record<string, unknown>) => encodeURIComponent(String(body.id));
    const sameId = (id: unknown) => (body: unknown) => ((body as { id?: unknown }).id === id ? undefined : `answered for ${String((body as { id?: unknown }).id)}, not ${String(id)}`);
    switch (op.id) {
      case 'POST /v1/tasks':
        return fc.tuple(this.task(), jsonContentType).map(([task, type]) =>
          validCase(task, async () => ({
            req: postJson(op.path, task, type),
            check: (body, headers) => {
              const id = (body as { id: string }).id;
              return headers.location === `/v1/tasks/${encodeURIComponent(id)}` ? undefined : `Location ${String(headers.location)} does not name task ${id}`;
            },
          })),
        );
      case 'POST /v1/tasks/batch':
        return fc.tuple(this.batch(), jsonContentType).map(([batch, type]) =>
          validCase(batch, async () => ({
            req: postJson(op.path, batch, type),
            check: (body) => ((body as { tasks: unknown[] }).tasks.length === batch.tasks.length ? undefined : 'not one answer per task'),
          })),
        );
      case 'GET /v1/tasks/:id':
      case 'DELETE /v1/tasks/:id':
        return this.task({ keyed: false }).map((task) =>
          validCase(task, async (fx) => {
            const made = await fx.accepted(postJson('/v1/tasks', task));
            return { req: { method: op.method, path: `/v1/tasks/${idOf(made)}` }, check: sameId(made.id) };
          }),
        );
      case 'POST /v1/workflows':
        return fc.tuple(this.workflow(), jsonContentType).map(([workflow, type]) => validCase(workflow, async () => ({ req: postJson(op.path, workflow, type) })));
      case 'GET /v1/workflows/:id':
      case 'DELETE /v1/workflows/:id':
        return this.workflow({ keyed: false }).map((workflow) =>
          validCase(workflow, async (fx) => {
            const run = await fx.accepted(postJson('/v1/workflows', workflow));
            return { req: { method: op.method, path: `/v1/workflows/${idOf(run)}` }, check: sameId(run.id) };
          }),
        );
      case 'GET /v1/dlq':
      case 'GET /v1/agents':
      case 'GET /v1/pools':
      case 'GET /v1/workflows':
        return this.query(op.path).map((q) => validCase(q, async () => ({ req: get(q ? `${op.path}?${q}` : op.path) })));
      case 'POST /v1/dlq/replay':
        return fc
          .oneof(fc.constant(undefined), fc.constant(null), fc.constant({}), this.filter())
          .map((filter) => validCase(filter === undefined ? '(no body)' : filter, async () => ({ req: filter === undefined ? { method: 'POST', path: op.path } : postJson(op.path, filter) })));
      case 'POST /v1/dlq/:id/replay':
        return fc
          .constantFrom(...this.typeNames)
          .chain((type) => this.payload(type).map((payload) => ({ type, payload })))
          .map((dead) =>
            validCase(dead, async (fx) => {
              const id = await fx.dead(dead.type, dead.payload);
              return { req: { method: 'POST', path: `/v1/dlq/${encodeURIComponent(id)}/replay` }, check: sameId(id) };
            }),
          );
      case 'POST /v1/agents/:id/drain':
        return fc.constantFrom(...this.ctx.agentIds).map((id) =>
          validCase(id, async () => ({ req: { method: 'POST', path: `/v1/agents/${encodeURIComponent(id)}/drain` }, check: sameId(id) })),
        );
      case 'POST /v1/breakers/:type/:pool/reset':
        return fc.tuple(fc.constantFrom(...this.typeNames), fc.oneof(fc.constant('default'), fc.stringMatching(POOL_PATTERN))).map(([type, pool]) =>
          validCase({ type, pool }, async () => ({
            req: { method: 'POST', path: `/v1/breakers/${type}/${pool}/reset` },
            check: (body) => ((body as { name: string }).name === `pool:${type}.${pool}` ? undefined : 'reset another breaker'),
          })),
        );
      default:
        // Operations without input: vary what a client may add that the API must ignore.
        return fc
          .record({ accept: fc.constantFrom('application/json', '*/*', 'text/html', 'application/problem+json'), 'x-request-id': text(0, 20).map((s) => s.replace(/[^\x21-\x7e]/g, '')) })
          .map((headers) => validCase(headers, async () => ({ req: { method: op.method, path: op.path, headers } })));
    }
  }
}

/** An object as a query string: arrays as repeated keys, everything percent-encoded. */
export function toQuery(model: Record<string, unknown>): string {
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(model)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
  }
  return pairs.join('&');
}
