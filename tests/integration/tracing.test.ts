/**
 * OpenTelemetry traces, exported over OTLP/HTTP to a receiver in this process: one task's span tree
 * from the caller's traceparent through the HTTP request, the enqueue, the wait in the pool and the
 * attempt to the handler's own span; a retried task's attempts (the failed one marked an error, with
 * its outcome); a workflow's node tasks in the trace of the request that started it, under the run's
 * span; a task leased by a worker over HTTP, whose lease carries the trace; a malformed traceparent
 * starts a new trace and is never an error.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { startTracing, stopTracing } from '../../src/config/tracing.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import demoTypes from '../../queues/index.ts';
import { echo } from '../../queues/echo.ts';
import flaky from '../../workers/flaky.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  status?: { code?: number };
}
const { prefix } = useRedisPrefix('tracing');
const spans: OtlpSpan[] = [];
let receiver: Server;
let api: ApiServer;
const agents: Agent[] = [];

/** echo, whose handler makes a span of its own (it must hang under the attempt). */
const tracedEcho = defineWorker(echo, async (p) => trace.getTracer('handler').startActiveSpan('handler work', async (s) => {
  s.end();
  return { echoed: p };
}));

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString()) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const r of body.resourceSpans) for (const s of r.scopeSpans) spans.push(...s.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  delete process.env.OTEL_EXPORTER_OTLP_COMPRESSION;
  expect(await startTracing('switchyard-test')).toBe(true);
  const config = testConfig(prefix, { port: 0 });
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  agents.push(await Agent.start({ definition: tracedEcho, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 2 }));
  agents.push(await Agent.start({ definition: flaky, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 2 }));
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api?.close();
  await stopTracing();
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  await new Promise((r) => receiver?.close(r));
});

const enqueue = async (body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
};
const completed = (id: string) => waitFor(async () => ((await (await fetch(`${api.url}/v1/tasks/${id}`)).json()) as { state: string }).state === 'completed', { what: `${id} completed`, timeoutMs: 15_000 });
const attr = (s: OtlpSpan, key: string) => Object.values(s.attributes.find((a) => a.key === key)?.value ?? {})[0];
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = '00f067aa0ba902b7';

describe('traces', () => {
  it("carries a task's and a workflow's traces from the caller through the enqueue and the pool to the handler's own span", async () => {
    const id = await enqueue({ type: 'echo', payload: { message: 'traced' } }, { traceparent: `00-${TRACE}-${CALLER}-01` });
    await completed(id);
    const retried = await enqueue({ type: 'flaky', payload: { failUntilAttempt: 1 } }, { traceparent: `00-${'a'.repeat(32)}-${CALLER}-01` });
    await completed(retried);
    const fresh = await enqueue({ type: 'echo', payload: {} }, { traceparent: '00-not-a-trace-01' });
    await completed(fresh);
    const started = await fetch(`${api.url}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${'b'.repeat(32)}-${CALLER}-01` },
      body: JSON.stringify({ name: 'traced-pair', nodes: [{ id: 'a', type: 'echo', payload: {} }, { id: 'b', type: 'echo', payload: {}, dependsOn: ['a'] }] }),
    });
    expect(started.status).toBe(202);
    const runId = ((await started.json()) as { id: string }).id;
    await waitFor(async () => ((await (await fetch(`${api.url}/v1/workflows/${runId}`)).json()) as { state: string }).state === 'completed', { what: 'the run completed', timeoutMs: 15_000 });
    // A task run by a worker over HTTP: its lease carries the trace, the API records the wait and the attempt.
    const post = async (path: string, body: unknown) => (await fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>;
    const worker = String((await post('/v1/workers', { type: 'echo', pool: 'http' })).id);
    await post(`/v1/workers/${worker}/heartbeat`, { health: 'HEALTHY' });
    const remote = await enqueue({ type: 'echo', payload: {}, pool: 'http' }, { traceparent: `00-${'c'.repeat(32)}-${CALLER}-01` });
    const [lease] = (await post(`/v1/workers/${worker}/leases`, { waitMs: 5000 })).leases as Array<{ task: string; lease: string; traceparent?: string }>;
    expect(lease).toMatchObject({ task: remote, traceparent: expect.stringMatching(new RegExp(`^00-${'c'.repeat(32)}-[0-9a-f]{16}-01$`)) });
    expect(await post(`/v1/workers/${worker}/results`, { results: [{ task: remote, lease: lease!.lease, status: 'completed', result: { echoed: {} } }] })).toEqual({ results: [{ task: remote, state: 'completed' }] });
    await stopTracing(); // flushes what is batched
    const tree = spans.filter((s) => s.traceId === TRACE);
    const one = (name: string) => {
      const found = tree.filter((s) => s.name === name);
      expect(found, `${name} in ${tree.map((s) => s.name).join(', ')}`).toHaveLength(1);
      return found[0]!;
    };
    const http = one('POST /v1/tasks');
    expect(http.parentSpanId).toBe(CALLER);
    expect(http.kind).toBe(2); // SERVER
    const send = one('enqueue echo');
    expect(send.parentSpanId).toBe(http.spanId);
    expect(send.kind).toBe(4); // PRODUCER
    expect(attr(send, 'switchyard.task.id')).toBe(id);
    expect(one('wait echo').parentSpanId).toBe(send.spanId);
    const attempt = one('attempt echo');
    expect(attempt.parentSpanId).toBe(send.spanId);
    expect(attempt.kind).toBe(5); // CONSUMER
    expect(attr(attempt, 'switchyard.breaker.admission')).toBe('CLOSED');
    expect(one('handler work').parentSpanId).toBe(attempt.spanId);

    // The retried task: two attempts in its trace, the first an error that says it is retried.
    const attempts = spans.filter((s) => s.traceId === 'a'.repeat(32) && s.name === 'attempt flaky').sort((a, b) => Number(attr(a, 'switchyard.attempt')) - Number(attr(b, 'switchyard.attempt')));
    expect(attempts.map((s) => [attr(s, 'switchyard.attempt'), s.status?.code ?? 0, attr(s, 'switchyard.attempt.outcome')])).toEqual([[1, 2, 'retry'], [2, 0, undefined]]);

    // The workflow: request -> the run's span -> each node's wait and attempt (its handler's span under it).
    const run = spans.filter((s) => s.traceId === 'b'.repeat(32));
    const runSpan = run.find((s) => s.name === 'workflow traced-pair')!;
    expect(run.find((s) => s.spanId === runSpan.parentSpanId)?.name).toBe('POST /v1/workflows');
    expect(attr(runSpan, 'switchyard.run.id')).toBe(runId);
    const nodeAttempts = run.filter((s) => s.name === 'attempt echo');
    expect(nodeAttempts.map((s) => attr(s, 'switchyard.task.id')).sort()).toEqual([`${runId}.a`, `${runId}.b`]);
    for (const a of nodeAttempts) expect(a.parentSpanId).toBe(runSpan.spanId);
    expect(run.filter((s) => s.name === 'handler work')).toHaveLength(2);

    // Over HTTP: the lease's traceparent is the enqueue span; the wait and the attempt hang under it.
    const overHttp = spans.filter((s) => s.traceId === 'c'.repeat(32));
    const remoteEnqueue = overHttp.find((s) => s.name === 'enqueue echo')!;
    expect(lease!.traceparent).toBe(`00-${'c'.repeat(32)}-${remoteEnqueue.spanId}-01`);
    const remoteAttempt = overHttp.find((s) => s.name === 'attempt echo')!;
    expect(remoteAttempt.parentSpanId).toBe(remoteEnqueue.spanId);
    expect(attr(remoteAttempt, 'switchyard.worker.protocol')).toBe('http');
    expect(attr(remoteAttempt, 'switchyard.attempt.outcome')).toBe('completed');
    expect(attr(remoteAttempt, 'switchyard.attempt')).toBe(1);
    expect(overHttp.find((s) => s.name === 'wait echo')?.parentSpanId).toBe(remoteEnqueue.spanId);

    // A malformed traceparent: its task has a trace of its own, rooted at the request.
    const freshEnqueue = spans.find((s) => s.name === 'enqueue echo' && attr(s, 'switchyard.task.id') === fresh)!;
    const root = spans.find((s) => s.spanId === freshEnqueue.parentSpanId)!;
    expect(root.name).toBe('POST /v1/tasks');
    expect(root.parentSpanId ?? '').toBe('');
  });
});
