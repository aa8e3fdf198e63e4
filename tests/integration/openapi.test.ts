/** The OpenAPI document and its page, checked against the routes the Express app really has. */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/agent-type/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
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
    expect(Object.keys(get.responses).sort()).toEqual(['200', '401', '404', '503']);
    expect(get.responses['404'].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
    const dlq = doc.paths['/v1/dlq'].get.parameters.map((p: { name: string }) => p.name);
    expect(dlq).toEqual(expect.arrayContaining(['type', 'pool', 'error', 'since', 'until', 'limit']));
    expect(doc.paths['/healthz'].get.security).toEqual([]);
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
