/**
 * ctx.progress(): what a handler reports shows in GET /v1/tasks/:id while it runs (and stays once it
 * ended), comes as `progress` events on GET /v1/events (the value when its JSON is at most 1 KiB, else
 * only that it changed), and reaches the typed client's wait (onProgress) without waking it more than
 * every 250 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { createClient } from '../../src/client/client.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import demoTypes from '../../queues/index.ts';
import { echo } from '../../queues/echo.ts';
import flaky from '../../workers/flaky.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('progress');
let api: ApiServer;
const agents: Agent[] = [];

/** An echo whose handler reports a progress object too big for an event (2 KiB), then a small one. */
const bigProgress = defineWorker(echo, async (p, ctx) => {
  await ctx.progress({ stage: 'load', log: 'x'.repeat(2048) });
  await ctx.progress({ stage: 'done' });
  return { echoed: p };
});

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0, eventsRetentionMs: 30_000 });
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  agents.push(await Agent.start({ definition: flaky, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 4 }));
  agents.push(await Agent.start({ definition: bigProgress, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 2 }));
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api.close();
});

interface TaskView {
  state: string;
  progress?: unknown;
}
const task = async (id: string) => (await (await fetch(`${api.url}/v1/tasks/${id}`)).json()) as TaskView;
const enqueue = async (type: string, payload: unknown) => {
  const res = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type, payload }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
};

/** The data of every event for `taskId` until one in a final state (or `ms` pass). */
async function eventsOf(taskId: string, ms: number): Promise<Array<{ state: string; progress?: unknown }>> {
  const stop = AbortSignal.timeout(ms);
  const res = await fetch(`${api.url}/v1/events?task=${encodeURIComponent(taskId)}&lastEventId=0-0`, { signal: stop });
  const got: Array<{ state: string; progress?: unknown }> = [];
  try {
    for await (const m of res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())) {
      if (m.event === 'gap') continue;
      const e = JSON.parse(m.data) as { state: string; progress?: unknown };
      got.push(e);
      if (['completed', 'dead', 'cancelled'].includes(e.state)) break;
    }
  } catch {
    // timed out: the caller's expectations say what was missing
  }
  return got;
}

describe('task progress', () => {
  it('shows in the task while it runs and after, and comes as progress events with the value', async () => {
    const id = await enqueue('flaky', { latencyMs: 1500, progressSteps: 3 });
    const events = eventsOf(id, 20_000);
    expect((await task(id)).progress).toBeUndefined();
    // Seen while running: 33 (after the first third) with the task still active.
    await waitFor(async () => {
      const v = await task(id);
      return v.state === 'active' && v.progress === 33;
    }, { what: 'progress 33 while active', timeoutMs: 10_000 });
    await waitFor(async () => (await task(id)).state === 'completed', { what: 'completed', timeoutMs: 10_000 });
    expect((await task(id)).progress).toBe(100);
    const got = await events;
    expect(got.filter((e) => e.state === 'progress').map((e) => e.progress)).toEqual([33, 67, 100]);
    // The agent's own events in its order (the API's `waiting` comes from another log: it may land anywhere before them).
    expect(got.map((e) => e.state).filter((s) => s !== 'waiting')).toEqual(['active', 'progress', 'progress', 'progress', 'completed']);
  });

  it('leaves a value over 1 KiB out of the event (the task holds it), and carries a small one', async () => {
    const id = await enqueue('echo', { message: 'big' });
    const got = await eventsOf(id, 20_000);
    const progress = got.filter((e) => e.state === 'progress');
    expect(progress).toHaveLength(2);
    expect(progress[0]).not.toHaveProperty('progress');
    expect(progress[1]!.progress).toEqual({ stage: 'done' });
    expect((await task(id)).progress).toEqual({ stage: 'done' });
  });

  it("reaches the typed client's wait through onProgress", async () => {
    const client = createClient({ url: api.url, types: demoTypes });
    const handle = await client.enqueue('flaky', { latencyMs: 1200, progressSteps: 4 });
    const seen: unknown[] = [];
    const done = await client.wait(handle, { timeoutMs: 20_000, intervalMs: 60_000, onProgress: (v) => seen.push(v.progress) });
    expect(done.state).toBe('completed');
    expect(done.progress).toBe(100);
    // Woken by the progress events (a poll would come only after a minute): at least two values on the way.
    expect(new Set(seen.filter((p) => typeof p === 'number' && p > 0 && p < 100)).size).toBeGreaterThanOrEqual(2);
  });
});
