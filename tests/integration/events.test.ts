/**
 * GET /v1/events: task, node and run events as Server-Sent Events. A client that drops its connection
 * for 5 s while tasks keep running, and reconnects with Last-Event-ID, gets every event exactly once
 * (the log's entries, compared one by one); filters by type, run and task; a resume older than the
 * retention gets a `gap` first; a bad query is a 400; with the log off the route is a 404 and the
 * typed client's waits poll instead. The typed client's wait and waitWorkflow are woken by events:
 * with a poll interval of a minute they still return within a few seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import { createClient } from '../../src/client/client.ts';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { Catalogue } from '../../src/model/catalogue.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { keys } from '../../src/redis/keys.ts';
import { idAfter, parseEntries } from '../../src/events/event-log.ts';
import demoTypes from '../../queues/index.ts';
import echo from '../../workers/echo.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('events');
const off = useRedisPrefix('events-off');
let api: ApiServer;
let quiet: ApiServer;
let agent: Agent;
let quietAgent: Agent;
const redis = createRedis(REDIS_URL, 'client');

beforeAll(async () => {
  const config = testConfig(prefix, { port: 0, eventsRetentionMs: 30_000 });
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  agent = await Agent.start({ definition: echo, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 10 });
  const offConfig = testConfig(off.prefix, { port: 0, eventsRetentionMs: 0 });
  quiet = await startApi({ config: offConfig, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  quietAgent = await Agent.start({ definition: echo, redisUrl: REDIS_URL, config: offConfig, log: silentLog, concurrency: 4 });
});

afterAll(async () => {
  await Promise.all([agent.close(0), quietAgent.close(0)]);
  await Promise.all([api.close(), quiet.close()]);
  redis.disconnect();
});

interface Frame {
  id?: string;
  event?: string;
  data: string;
}

/** Reads SSE frames from GET /v1/events until `stop` is aborted. */
async function listen(base: string, q: string, into: Frame[], stop: AbortSignal, lastEventId?: string): Promise<number> {
  const res = await fetch(`${base}/v1/events${q}`, { headers: lastEventId ? { 'last-event-id': lastEventId } : {}, signal: stop });
  if (!res.ok || !res.body) return res.status;
  void (async () => {
    try {
      for await (const m of res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream())) into.push({ ...(m.id ? { id: m.id } : {}), ...(m.event ? { event: m.event } : {}), data: m.data });
    } catch {
      // aborted
    }
  })();
  return res.status;
}

const enqueue = async (n: number, tag: string) => {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'echo', payload: { message: `${tag}-${i}` } }) });
    ids.push(((await res.json()) as { id: string }).id);
  }
  return ids;
};
const completedOf = (frames: Frame[], ids: readonly string[]) => frames.filter((f) => ids.includes(JSON.parse(f.data).task) && JSON.parse(f.data).state === 'completed').length;

describe('GET /v1/events', () => {
  it('resumes with Last-Event-ID after 5 s away: every event once, as the log holds them', async () => {
    const got: Frame[] = [];
    let stop = new AbortController();
    expect(await listen(api.url, '?type=echo', got, stop.signal)).toBe(200);
    const first = await enqueue(20, 'before');
    await waitFor(() => completedOf(got, first) === 20, { what: 'the first 20 completed' });
    stop.abort();
    const lastSeen = got.filter((f) => f.id).at(-1)!.id!;
    const away = await enqueue(30, 'away');
    await new Promise((r) => setTimeout(r, 5000));
    stop = new AbortController();
    expect(await listen(api.url, '?type=echo', got, stop.signal, lastSeen)).toBe(200);
    const after = await enqueue(10, 'after');
    await waitFor(() => completedOf(got, [...first, ...away, ...after]) === 60, { what: 'all 60 completed events' });
    await new Promise((r) => setTimeout(r, 300));
    stop.abort();

    const ids = got.filter((f) => f.id).map((f) => f.id!);
    expect(new Set(ids).size, 'no event twice').toBe(ids.length);
    expect(got.some((f) => f.event === 'gap')).toBe(false);
    // Exactly the log's echo entries between the first and the last received, in order.
    const [from, to] = [ids[0]!, ids.at(-1)!];
    const logged = parseEntries((await redis.xrange(keys(prefix).events, from.split('.')[0]!, to.split('.')[0]!)) as Array<[string, string[]]>);
    const echoes = logged.filter((e) => e.event.kind === 'task' && e.event.type === 'echo' && !idAfter(from, e.id) && !idAfter(e.id, to)).map((e) => e.id);
    expect(ids).toEqual(echoes);
    for (const task of [...first, ...away, ...after]) {
      const states = got.map((f) => JSON.parse(f.data)).filter((e) => e.task === task).map((e) => e.state).sort();
      expect(states, task).toEqual(['active', 'completed', 'waiting']);
    }
  }, 60_000);

  it('filters by task and by run; a run shows its node and run events', async () => {
    const byTask: Frame[] = [];
    const byRun: Frame[] = [];
    const stop = new AbortController();
    const [task] = await enqueue(1, 'one');
    await listen(api.url, `?task=${encodeURIComponent(task!)}`, byTask, stop.signal, '0-0');
    const res = await fetch(`${api.url}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nodes: [{ id: 'a', type: 'echo', payload: {} }, { id: 'nap', kind: 'sleep', durationMs: 10, dependsOn: ['a'] }, { id: 'b', type: 'echo', payload: {}, dependsOn: ['nap'] }] }),
    });
    const run = ((await res.json()) as { id: string }).id;
    await listen(api.url, `?run=${run}`, byRun, stop.signal, '0-0');
    await waitFor(() => byRun.some((f) => f.event === 'run' && JSON.parse(f.data).state === 'completed'), { what: 'the run completed event' });
    stop.abort();
    expect(byTask.map((f) => JSON.parse(f.data)).every((e) => e.task === task)).toBe(true);
    expect(byTask.map((f) => JSON.parse(f.data).state)).toEqual(expect.arrayContaining(['waiting', 'completed']));
    const runEvents = byRun.map((f) => JSON.parse(f.data));
    expect(runEvents.every((e) => e.run === run)).toBe(true);
    expect(runEvents.filter((e) => e.kind === 'run').map((e) => e.state)).toEqual(['running', 'completed']);
    // A task node's own task events say how it went; other kinds settle with a node event.
    expect(runEvents.filter((e) => e.kind === 'node').map((e) => `${e.node}:${e.state}`)).toEqual(['nap:done']);
    expect(runEvents.filter((e) => e.kind === 'task' && e.state === 'completed').map((e) => e.node)).toEqual(['a', 'b']);
  });

  it('leaves no stream behind when clients go away, even during its first reads', async () => {
    const streams = async () => Number(/^switchyard_event_streams (\d+)/m.exec(await (await fetch(`${api.url}/metrics`)).text())?.[1]);
    const open: Frame[] = [];
    const stop = new AbortController();
    await listen(api.url, '?type=none', open, stop.signal);
    expect(await streams()).toBe(1);
    stop.abort();
    // A long log to read from 0-0 (empty entries), and clients that leave while the stream reads it.
    const filler = redis.pipeline();
    for (let i = 0; i < 30_000; i++) filler.xadd(keys(prefix).events, '*', 'e', '[]');
    await filler.exec();
    await Promise.all(Array.from({ length: 10 }, async () => {
      const quick = new AbortController();
      const req = fetch(`${api.url}/v1/events?type=none&lastEventId=0-0`, { signal: quick.signal }).catch(() => undefined);
      setTimeout(() => quick.abort(), 2);
      await req;
    }));
    await waitFor(async () => (await streams()) === 0, { what: 'every stream closed' });
  });

  it('says so with a gap event when the resume id is older than the log keeps', async () => {
    const got: Frame[] = [];
    const stop = new AbortController();
    await listen(api.url, '?type=echo', got, stop.signal, `${Date.now() - 600_000}-0`);
    await waitFor(() => got.length > 0, { what: 'the first frame' });
    stop.abort();
    expect(got[0]!.event).toBe('gap');
  });

  it('refuses a bad query with a 400 naming the field, and is a 404 with the log off', async () => {
    const bad = await fetch(`${api.url}/v1/events?lastEventId=yesterday`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ path: string }> }).errors[0]!.path).toBe('lastEventId');
    expect((await fetch(`${api.url}/v1/events?colour=red`)).status).toBe(400);
    const none = await fetch(`${quiet.url}/v1/events`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { detail: string }).detail).toMatch(/SWITCHYARD_EVENTS_RETENTION_MS=0/);
  });

  it('wakes the typed client\'s waits: a minute-long poll interval still returns in seconds; without a log it polls', async () => {
    const client = createClient({ url: api.url, types: demoTypes });
    const t0 = Date.now();
    const handle = await client.enqueue('echo', { message: 'wait for me' });
    expect((await client.wait(handle, { intervalMs: 60_000, timeoutMs: 20_000 })).state).toBe('completed');
    const run = await client.runWorkflow({ nodes: [{ id: 'a', type: 'echo', payload: {} }, { id: 'b', type: 'echo', payload: {}, dependsOn: ['a'] }] });
    expect((await client.waitWorkflow(run.id, { intervalMs: 60_000, timeoutMs: 20_000 })).state).toBe('completed');
    expect(Date.now() - t0).toBeLessThan(10_000);
    const polling = createClient({ url: quiet.url, types: demoTypes });
    const h = await polling.enqueue('echo', { message: 'poll me' });
    expect((await polling.wait(h, { intervalMs: 50, timeoutMs: 20_000 })).state).toBe('completed');
    await expect((async () => {
      for await (const e of polling.events({}, { signal: AbortSignal.timeout(2000) })) void e;
    })()).rejects.toMatchObject({ status: 404 });
  });

  it('the typed client\'s events() streams and resumes by itself', async () => {
    const client = createClient({ url: api.url, types: demoTypes });
    const stop = new AbortController();
    const seen: string[] = [];
    const ids = await enqueue(3, 'stream');
    const done = (async () => {
      for await (const e of client.events({ type: 'echo' }, { signal: stop.signal, lastEventId: '0-0' })) {
        if ('event' in e && e.event.kind === 'task' && e.event.state === 'completed' && ids.includes(e.event.task)) seen.push(e.event.task);
        if (seen.length === 3) stop.abort();
      }
    })();
    await done;
    expect(seen.sort()).toEqual([...ids].sort());
  });
});
