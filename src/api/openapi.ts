/**
 * The OpenAPI 3.1 document of the API, generated from the contract (contract.ts: the zod schemas the
 * routes validate with, and the shapes of their answers) and from each agent type's payload and
 * result schemas. Served at GET /openapi.json, rendered at GET /docs (docs-page.ts).
 */
import type { z } from 'zod';
import type { Catalogue } from '../model/catalogue.ts';
import { jsonSchemaOf } from '../model/validation.ts';
import { DEFAULT_NODE_KIND, nodeSchema } from '../model/workflow-definition.ts';
import { NODE_KINDS } from '../workflow/node-kinds.ts';
import { OPERATIONS, problemSchema, type Operation } from './contract.ts';

type JsonSchema = Record<string, unknown>;

/** zod -> JSON Schema 2020-12 (OpenAPI 3.1's dialect), without the `$schema` line each would repeat. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = jsonSchemaOf(schema, io);
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const titleCase = (type: string) => type.replace(/(^|-)([a-z0-9])/g, (_, _dash: string, c: string) => c.toUpperCase());
const openApiPath = (path: string) => path.replace(/:([a-z]+)/g, '{$1}');

/**
 * A task request for one agent type: the generic request with `type` fixed and `payload` that type's
 * schema, so a client generator or a reader sees what each type takes.
 */
function typedTaskRequest(generic: JsonSchema, type: string): JsonSchema {
  const properties = { ...(generic.properties as Record<string, unknown>), type: { const: type }, payload: ref(`${titleCase(type)}Payload`) };
  return { ...generic, title: `${type} task`, properties };
}

/**
 * What the HTTP edge may answer on any route before the route runs (app.ts, server.ts): 408 a request
 * not read in time, 421 a Host name not allowed (without API keys), 429 over the connections allowed
 * per address. On every write: 403 a cross-site request, 400/413/415 a body that is not JSON, too large,
 * or (on a bodiless route) anything but none or `{}`.
 */
const EDGE_ERRORS = [408, 421, 429];
const SUCCESS_TEXT: Record<number, string> = { 201: 'Created', 202: 'Accepted' };
const WRITE_ERRORS = [400, 403, 413, 415];

function operationObject(o: Operation, catalogue: Catalogue): Record<string, unknown> {
  const parameters: unknown[] = o.params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
  if (o.querySchema) {
    // A query value is text: the routes read it into what it means (an integer, a list of states), and
    // the document gives that meaning, as OpenAPI serialises it: integers in digits, lists comma-separated.
    const required = new Set((schemaOf(o.querySchema, 'input').required as string[] | undefined) ?? []);
    const q = schemaOf(o.querySchema, 'output');
    for (const [name, schema] of Object.entries((q.properties as Record<string, JsonSchema>) ?? {})) {
      const list = schema.type === 'array' ? { style: 'form', explode: false } : {};
      parameters.push({ name, in: 'query', required: required.has(name), schema, ...list });
    }
  }
  const responses: Record<string, unknown> = {};
  for (const status of o.success) {
    if (status === 204) responses['204'] = { description: 'No content' };
    else if (o.stream) responses[String(status)] = { description: 'A stream of events: `id: <entry id>`, `event: <kind>`, `data: <the event, JSON, as this schema>`', content: { [o.stream]: { schema: schemaOf(o.response, 'output') } } };
    else responses[String(status)] = { description: SUCCESS_TEXT[status] ?? 'OK', content: { 'application/json': { schema: schemaOf(o.response, 'output') } } };
  }
  const errors = new Set([...o.errors, ...(o.auth ? [401, 403, 503] : []), ...EDGE_ERRORS, ...(o.method === 'GET' ? [] : WRITE_ERRORS)]);
  for (const status of [...errors].sort()) {
    responses[String(status)] = { description: 'Problem (RFC 7807)', content: { 'application/problem+json': { schema: ref('Problem') } } };
  }
  const body = requestBody(o, catalogue);
  return {
    operationId: o.id.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, ''),
    summary: o.summary,
    ...(o.auth ? { description: `Needs an API key with the scope \`${o.scope}\` (or \`admin\`); 403 names the scope a key lacks.`, 'x-switchyard-scope': o.scope } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
    ...(o.auth ? {} : { security: [] }),
  };
}

function requestBody(o: Operation, catalogue: Catalogue): Record<string, unknown> | undefined {
  if (o.body === 'none' || !o.bodySchema) return undefined;
  let schema: unknown = schemaOf(o.bodySchema, 'input');
  if (o.id === 'POST /v1/tasks') schema = ref('TaskRequest');
  if (o.id === 'POST /v1/tasks/batch') {
    const batch = schema as JsonSchema;
    const props = batch.properties as Record<string, JsonSchema>;
    schema = { ...batch, properties: { ...props, tasks: { ...props.tasks, items: ref('TaskRequest') } } };
  }
  if (o.id === 'POST /v1/workflows') {
    const workflow = schema as JsonSchema;
    const props = workflow.properties as Record<string, JsonSchema>;
    schema = { ...workflow, properties: { ...props, nodes: { ...props.nodes, items: ref('WorkflowNode') } } };
  }
  return { required: o.body === 'required', content: { 'application/json': { schema } } };
}

export function openApiDocument(catalogue: Catalogue, version: string): Record<string, unknown> {
  const tasks = OPERATIONS.find((o) => o.id === 'POST /v1/tasks')!;
  const generic = schemaOf(tasks.bodySchema!, 'input');
  const types = catalogue.list();
  const schemas: Record<string, unknown> = { Problem: schemaOf(problemSchema, 'output') };
  for (const t of types) {
    schemas[`${titleCase(t.name)}Payload`] = { ...schemaOf(t.payload, 'input'), description: `Payload of ${t.name} ${t.version}` };
    schemas[`${titleCase(t.name)}Result`] = { ...schemaOf(t.result, 'output'), description: `Result of ${t.name} ${t.version}` };
    schemas[`${titleCase(t.name)}TaskRequest`] = typedTaskRequest(generic, t.name);
  }
  schemas.TaskRequest = {
    oneOf: types.map((t) => ref(`${titleCase(t.name)}TaskRequest`)),
    discriminator: { propertyName: 'type', mapping: Object.fromEntries(types.map((t) => [t.name, `#/components/schemas/${titleCase(t.name)}TaskRequest`])) },
  };
  // A workflow node is a task (its type's payload, the per-task options) with an id, dependencies and a compensation.
  const node = schemaOf(nodeSchema, 'input');
  for (const t of types) schemas[`${titleCase(t.name)}WorkflowNode`] = { ...typedTaskRequest(node, t.name), title: `${t.name} node` };
  // Other node kinds (node-kinds.ts) have one shape each; with them, `type` no longer tells a node's schema.
  const others = NODE_KINDS.filter((k) => k.name !== DEFAULT_NODE_KIND);
  for (const k of others) schemas[`${titleCase(k.name)}WorkflowNode`] = { ...schemaOf(k.schema, 'input'), title: `${k.name} node` };
  schemas.WorkflowNode = {
    oneOf: [...types, ...others].map((t) => ref(`${titleCase(t.name)}WorkflowNode`)),
    ...(others.length === 0
      ? { discriminator: { propertyName: 'type', mapping: Object.fromEntries(types.map((t) => [t.name, `#/components/schemas/${titleCase(t.name)}WorkflowNode`])) } }
      : {}),
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const o of OPERATIONS) (paths[openApiPath(o.path)] ??= {})[o.method.toLowerCase()] = operationObject(o, catalogue);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version,
      description: 'Tasks and workflows for fleets of worker agents, on BullMQ and Redis. Errors are RFC 7807 problem+json.',
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'one of SWITCHYARD_API_KEYS' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
  };
}
