/**
 * The typed client against a real API and agents in this process: payload and result types come
 * from the agent-type declarations (the @ts-expect-error lines are checked by `npm run typecheck`).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { ApiError, createClient, WaitTimeoutError } from '../../src/index.ts';
import demoTypes from '../../queues/index.ts';
import transformWorker from '../../workers/transform.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';

const { prefix } = useRedisPrefix('client');
const config = testConfig(prefix, { port: 0 });
let api: ApiServer;
let agent: Agent;
beforeAll(async () => {
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  agent = await Agent.start({ definition: transformWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 4 });
});
afterAll(async () => {
  await agent?.close(0);
  await api?.close();
});

const client = () => createClient({ url: api.url, types: demoTypes });

describe('createClient', () => {
  it('enqueues a typed task and waits for its typed result', async () => {
    const task = await client().enqueue('transform', { text: 'hello world', ops: ['upper', 'words'] });
    expect(task).toMatchObject({ type: 'transform', state: expect.stringMatching(/waiting|parked/) });
    const done = await client().wait(task, { timeoutMs: 15_000, intervalMs: 50 });
    expect(done.state).toBe('completed');
    const text: string | undefined = done.result?.text; // typed from transform's result schema
    expect(text).toBe('HELLO WORLD');
    expect(done.result?.words).toBe(2);
  });

  it('enqueues a batch, reads a task back, and cancels one that has not started', async () => {
    const [a, b] = await client().enqueueBatch([
      { type: 'transform', payload: { text: 'a' } },
      { type: 'echo', payload: { message: 'b' }, delayMs: 60_000 },
    ]);
    expect((await client().get(a!)).id).toBe(a!.id);
    expect((await client().cancel(b!)).state).toBe('cancelled');
  });

  it('gives up waiting with WaitTimeoutError, and turns problem+json into ApiError with the fields', async () => {
    const later = await client().enqueue('echo', { message: 'x' }, { delayMs: 60_000 });
    await expect(client().wait(later, { timeoutMs: 100, intervalMs: 20 })).rejects.toBeInstanceOf(WaitTimeoutError);
    const bad = client().enqueue('transform', { text: 5 } as unknown as { text: string });
    await expect(bad).rejects.toBeInstanceOf(ApiError);
    await expect(bad).rejects.toMatchObject({ status: 400, errors: [{ path: 'payload.text' }] });
  });

  it('sends reads and keyed writes again after a 503, and never a write without an idempotencyKey', async () => {
    // A front that answers the first `failing` requests 503 (as the API does while Redis is unreachable)
    // and forwards the rest to the real API.
    let failing = 0;
    let seen = 0;
    const front: Server = createServer((req, res) => {
      seen++;
      if (failing > 0) {
        failing--;
        res.writeHead(503, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ title: 'Service unavailable', detail: 'Redis is unreachable' }));
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
        const body = chunks.length ? Buffer.concat(chunks) : undefined;
        void fetch(api.url + (req.url ?? '/'), { method: req.method, headers: { 'content-type': 'application/json' }, ...(body ? { body } : {}) }).then(async (r) =>
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(await r.text()),
        );
      });
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const { port } = front.address() as { port: number };
    const flaky = createClient({ url: `http://127.0.0.1:${port}`, types: demoTypes });
    try {
      failing = 2;
      const key = `retry-${Date.now()}`;
      const task = await flaky.enqueue('echo', { message: 'again' }, { idempotencyKey: key });
      expect(seen).toBe(3);
      failing = 2;
      expect((await flaky.get(task)).id).toBe(task.id);
      expect(seen).toBe(6);
      failing = 1;
      await expect(flaky.enqueue('echo', { message: 'once' })).rejects.toMatchObject({ status: 503 });
      expect(seen).toBe(7);
      failing = 10;
      await expect(createClient({ url: `http://127.0.0.1:${port}`, retries: 1 }).get(task.id)).rejects.toMatchObject({ status: 503 });
      expect(seen).toBe(9);
    } finally {
      await new Promise((r) => front.close(r));
    }
  });
});

// Compile-time only: wrong payloads and unknown types do not type-check.
export function typeChecks(): void {
  const c = client();
  // @ts-expect-error text must be a string
  void c.enqueue('transform', { text: 5 });
  // @ts-expect-error no such agent type
  void c.enqueue('no-such-type', {});
  // @ts-expect-error echo takes no text field... but a message; a number is not one
  void c.enqueue('echo', { message: 42 });
}
