/** The OpenAPI document and its page, checked against the routes the Express app really has. */
import { Validator } from '@seriousme/openapi-schema-validator';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { HEALTH_STATES } from '../../src/model/health-state.ts';
import demoTypes from '../../queues/index.ts';
import { json } from '../support/http.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';

const { prefix } = useRedisPrefix('openapi');
let api: ApiServer;
beforeAll(async () => {
  api = await startApi({ config: testConfig(prefix, { port: 0 }), catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
});
afterAll(() => api?.close());

type Layer = { route?: { path: string; methods: Record<string, boolean> } };
/** `METHOD /path/{param}` for every route registered on the app (middleware and mounted routers have no `route`). */
function appRoutes(): string[] {
  const stack = (api.app as unknown as { router: { stack: Layer[] } }).router.stack;
  return stack.flatMap((l) =>
    l.route ? Object.keys(l.route.methods).filter((m) => m !== '_all').map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:([a-z]+)/g, '{$1}')}`) : [],
  );
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document with every route of the app, and nothing else', async () => {
    const res = await fetch(`${api.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await json(res);
    expect(doc).toMatchObject({ openapi: '3.1.0', info: { title: 'Switchyard', version: expect.stringMatching(/^\d+\.\d+\.\d+/) } });
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    // The document and its page describe the API, not themselves; /metrics is Prometheus text, not JSON.
    const pages = ['GET /openapi.json', 'GET /docs', 'GET /metrics'];
    expect(documented.sort()).toEqual(appRoutes().filter((r) => !pages.includes(r)).sort());
  });

  it('is valid against the OpenAPI 3.1 schema', async () => {
    const doc = await json(fetch(`${api.url}/openapi.json`));
    const result = await new Validator().validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('gives each agent type its payload schema, and POST /v1/tasks a request per type', async () => {
    const doc = await json(fetch(`${api.url}/openapi.json`));
    const schemas = doc.components.schemas;
    expect(schemas.TransformPayload).toMatchObject({ type: 'object', properties: { text: { type: 'string' } } });
    expect(schemas.TransformTaskRequest.properties).toMatchObject({ type: { const: 'transform' }, payload: { $ref: '#/components/schemas/TransformPayload' } });
    expect(schemas.TaskRequest.oneOf).toHaveLength(demoTypes.length);
    expect(doc.paths['/v1/tasks'].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/TaskRequest' });
    expect(doc.paths['/v1/tasks/batch'].post.requestBody.content['application/json'].schema.properties.tasks.items).toEqual({ $ref: '#/components/schemas/TaskRequest' });
  });

  it('documents path and query parameters, answers and problem+json errors', async () => {
    const doc = await json(fetch(`${api.url}/openapi.json`));
    const get = doc.paths['/v1/tasks/{id}'].get;
    expect(get.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    expect(Object.keys(get.responses).sort()).toEqual(['200', '401', '403', '404', '408', '421', '429', '503']);
    // The edge's refusals of a write (cross-site, not JSON, too large, a body on a bodiless route) are documented too.
    expect(Object.keys(doc.paths['/v1/breakers/{type}/{pool}/reset'].post.responses).sort()).toEqual(['200', '400', '401', '403', '404', '408', '413', '415', '421', '429', '503']);
    expect(get.responses['404'].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
    const dlq = doc.paths['/v1/dlq'].get.parameters.map((p: { name: string }) => p.name);
    expect(dlq).toEqual(expect.arrayContaining(['type', 'pool', 'error', 'since', 'until', 'limit']));
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    // Each authenticated operation names the scope a key needs.
    expect(get['x-switchyard-scope']).toBe('read');
    expect(doc.paths['/v1/tasks'].post['x-switchyard-scope']).toBe('produce');
    expect(doc.paths['/v1/breakers/{type}/{pool}/reset'].post['x-switchyard-scope']).toBe('admin');
    expect(doc.paths['/v1/breakers/{type}/{pool}/reset'].post.description).toMatch(/scope `admin`/);
  });
});

describe('the document says exactly what the routes accept', () => {
  const post = (path: string, body: string) => fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const param = (doc: { paths: Record<string, Record<string, { parameters: Array<{ name: string }> }>> }, path: string, name: string) =>
    doc.paths[path]!.get!.parameters.find((p) => p.name === name);

  it('a workflow node is a task with an id, dependencies and a compensation, per agent type, or a node of another kind', async () => {
    const doc = await json(fetch(`${api.url}/openapi.json`));
    const schemas = doc.components.schemas;
    expect(doc.paths['/v1/workflows'].post.requestBody.content['application/json'].schema.properties.nodes.items).toEqual({ $ref: '#/components/schemas/WorkflowNode' });
    expect(schemas.WorkflowNode.oneOf).toHaveLength(demoTypes.length + 3);
    expect(schemas.SleepWorkflowNode).toMatchObject({ type: 'object', additionalProperties: false, properties: { kind: { const: 'sleep' }, durationMs: { type: 'integer' }, until: { type: 'string' } } });
    expect(schemas.SignalWorkflowNode).toMatchObject({ properties: { kind: { const: 'signal' }, name: { type: 'string' }, onTimeout: { enum: ['fail', 'continue'] } } });
    expect(schemas.MapWorkflowNode).toMatchObject({ additionalProperties: false, properties: { kind: { const: 'map' }, over: { type: 'string' }, type: { type: 'string' }, concurrency: { type: 'integer' }, tolerateFailures: { type: 'integer' } } });
    const node = schemas.TransformWorkflowNode;
    expect(node).toMatchObject({ type: 'object', additionalProperties: false, required: expect.arrayContaining(['id', 'type', 'payload']) });
    expect(node.properties).toMatchObject({
      id: { type: 'string', pattern: expect.any(String) },
      type: { const: 'transform' },
      payload: { $ref: '#/components/schemas/TransformPayload' },
      dependsOn: { type: 'array', items: { type: 'string' } },
      compensate: { type: 'object' },
      attempts: { type: 'integer' },
    });
    expect(node.properties.idempotencyKey).toBeUndefined();
  });

  it('health and tag are lists of enum values and patterns, capability has a pattern: and the route agrees', async () => {
    const doc = await json(fetch(`${api.url}/openapi.json`));
    expect(param(doc, '/v1/agents', 'health')).toEqual({
      name: 'health', in: 'query', required: false, style: 'form', explode: false,
      schema: { type: 'array', items: { type: 'string', enum: [...HEALTH_STATES] } },
    });
    expect(param(doc, '/v1/agents', 'tag')).toMatchObject({ style: 'form', explode: false, schema: { type: 'array', items: { type: 'string', pattern: expect.any(String) } } });
    const capability = param(doc, '/v1/agents', 'capability') as unknown as { schema: { type: string; pattern: string; maxLength: number } };
    expect(capability.schema).toMatchObject({ type: 'string', pattern: expect.any(String), maxLength: 200 });

    const agents = (q: string) => fetch(`${api.url}/v1/agents?${q}`).then((r) => r.status);
    expect(await agents('health=HEALTHY,DEGRADED')).toBe(200);
    expect(await agents('health=HEALTHY&health=UNKNOWN')).toBe(200);
    expect(await agents('health=healthy')).toBe(400);
    expect(await agents('health=%20HEALTHY')).toBe(400); // not an enum value, as the document says
    expect(await agents('health=HEALTHY,,DEGRADED')).toBe(400);
    expect(await agents('capability=transform%40%5E1.2')).toBe(200);
    expect(await agents('capability=transform%40latest')).toBe(400);
    expect(await agents('capability=Transform')).toBe(400);
    // Every capability the document's pattern allows, the route accepts.
    const pattern = new RegExp(capability.schema.pattern);
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(pattern, { size: 'small' }).filter((c) => c.length <= capability.schema.maxLength), async (c) => {
        expect(await agents(`capability=${encodeURIComponent(c)}`), c).toBe(200);
      }),
      { numRuns: 200, seed: 18 },
    );
  });

  it('limit is an integer, in the query and in the replay body: {"limit":[1]} and {"limit":"5"} get 400', async () => {
    const doc = await json(fetch(`${api.url}/openapi.json`));
    expect(param(doc, '/v1/dlq', 'limit')).toEqual({ name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } });
    const body = doc.paths['/v1/dlq/replay'].post.requestBody.content['application/json'].schema;
    expect(body.properties.limit).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });

    expect((await fetch(`${api.url}/v1/dlq?limit=10`)).status).toBe(200);
    for (const limit of ['0x10', '1e2', '%205', '10.0', '']) expect((await fetch(`${api.url}/v1/dlq?limit=${limit}`)).status, limit).toBe(400);
    for (const bad of ['{"limit":[1]}', '{"limit":"5"}', '{"limit":true}', '{"limit":1.5}']) {
      const res = await post('/v1/dlq/replay', bad);
      expect(res.status, bad).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect((await json(res)).errors).toEqual([expect.objectContaining({ path: 'limit' })]);
    }
    expect((await post('/v1/dlq/replay', '{"limit":5}')).status).toBe(202);
  });
});

describe('GET /docs', () => {
  it('renders every operation and the payloads as one HTML page', async () => {
    const res = await fetch(`${api.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('/openapi.json');
    for (const route of ['/v1/tasks/batch', '/v1/workflows/{id}', '/v1/breakers/{type}/{pool}/reset']) expect(html).toContain(`<code>${route}</code>`);
    expect(html).toContain('TransformPayload');
  });
});
