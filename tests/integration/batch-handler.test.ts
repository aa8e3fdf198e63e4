/**
 * Batch handlers (src/agent/batch-handler.ts) in a real agent on real Redis: tasks reach the handler
 * many per call; each item's result or Error is its own; a handler that throws, or returns the wrong
 * number of results, fails every item of that call, and each is retried under its own policy;
 * nothing is committed twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { FatalError } from '../../src/model/errors.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { producerSystem, silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('batch-handler');
const defaults = { attempts: 2, backoff: { type: 'fixed' as const, delayMs: 10, jitter: 0 }, timeoutMs: 5000 };
const breaker = { failureRatio: 1, minRequests: 1_000_000, windowMs: 1000, openMs: 1000, halfOpenProbes: 1 };
const square = defineAgentType({
  name: 'square',
  version: '1.0.0',
  payload: z.object({ n: z.number(), mode: z.enum(['ok', 'fail-once', 'fatal', 'bad-result']).default('ok') }),
  result: z.object({ squared: z.number() }),
  defaults,
  breaker,
});
/** Its handler returns no results for a call of first attempts only: such a call fails as a whole. */
const wrongLength = defineAgentType({ name: 'wrong-length', version: '1.0.0', payload: z.object({ n: z.number() }), result: z.object({ n: z.number() }), defaults, breaker });
const throwing = defineAgentType({ name: 'throwing', version: '1.0.0', payload: z.object({ n: z.number() }), result: z.object({ n: z.number() }), defaults, breaker });

const sys = producerSystem(prefix, { catalogue: new Catalogue([square, wrongLength, throwing]) });
const config = testConfig(prefix);
const batches: number[] = [];
const calls = new Map<string, number>();
const agents: Agent[] = [];
const failures: string[] = [];

beforeAll(async () => {
  await sys.ready;
  const start = async (definition: Parameters<typeof Agent.start>[0]['definition']) => {
    const agent = await Agent.start({ definition, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 25 });
    agent.on('failed', (_, err) => failures.push(err.message));
    agents.push(agent);
  };
  await start(defineWorker(square, { batch: { max: 20, waitMs: 20 } }, async (items) => {
    batches.push(items.length);
    return items.map(({ payload, ctx }) => {
      calls.set(ctx.taskId, (calls.get(ctx.taskId) ?? 0) + 1);
      if (payload.mode === 'fail-once' && ctx.attempt === 1) return new Error(`not yet (${payload.n})`);
      if (payload.mode === 'fatal') return new FatalError(`never (${payload.n})`);
      if (payload.mode === 'bad-result') return { squared: 'many' } as never;
      return { squared: payload.n * payload.n };
    });
  }));
  await start(defineWorker(wrongLength, { batch: { max: 5, waitMs: 20 } }, (items) => (items.some(({ ctx }) => ctx.attempt > 1) ? items.map(({ payload }) => ({ n: payload.n })) : [])));
  await start(defineWorker(throwing, { batch: { max: 5, waitMs: 20 } }, () => {
    throw new Error('the downstream refused the whole batch');
  }));
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
});

const finished = (ids: readonly string[]) =>
  waitFor(async () => {
    const views = await Promise.all(ids.map((id) => sys.lookup.find(id)));
    return views.every((v) => v && (v.state === 'completed' || v.state === 'dead')) ? views.map((v) => v!) : undefined;
  }, { timeoutMs: 30_000, what: `${ids.length} tasks to finish` });

describe('batch handlers', () => {
  it('hands the handler many tasks per call and stores each item\'s own result', async () => {
    const results = await sys.producer.enqueueBatch(Array.from({ length: 100 }, (_, n) => ({ type: 'square', payload: { n } })));
    const views = await finished(results.map((r) => r.task.id));
    views.forEach((v, n) => expect(v).toMatchObject({ state: 'completed', result: { squared: n * n } }));
    expect(Math.max(...batches)).toBeGreaterThan(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(20);
    // Each task ran once: one handler call saw it, and nothing ran again.
    for (const r of results) expect(calls.get(r.task.id)).toBe(1);
  });

  it('fails only the items whose entry is an Error, each under its own retry policy, and checks each result', async () => {
    const [ok, failOnce, fatal, bad] = await sys.producer.enqueueBatch([
      { type: 'square', payload: { n: 3 } },
      { type: 'square', payload: { n: 4, mode: 'fail-once' } },
      { type: 'square', payload: { n: 5, mode: 'fatal' } },
      { type: 'square', payload: { n: 6, mode: 'bad-result' } },
    ]);
    const [a, b, c, d] = await finished([ok!.task.id, failOnce!.task.id, fatal!.task.id, bad!.task.id]);
    expect(a).toMatchObject({ state: 'completed', result: { squared: 9 }, attempts: { made: 1 } });
    expect(b).toMatchObject({ state: 'completed', result: { squared: 16 }, attempts: { made: 2 } });
    expect(c).toMatchObject({ state: 'dead', attempts: { made: 1 } });
    expect(c!.error).toContain('never (5)');
    expect(d).toMatchObject({ state: 'dead' });
    expect(d!.error).toContain('result of square is invalid');
  });

  it('fails every item of a call that returns the wrong number of results, then retries each', async () => {
    const results = await sys.producer.enqueueBatch(Array.from({ length: 7 }, (_, n) => ({ type: 'wrong-length', payload: { n } })));
    const views = await finished(results.map((r) => r.task.id));
    for (const [n, v] of views.entries()) expect(v).toMatchObject({ state: 'completed', result: { n } });
    // The first call (first attempts only) failed as a whole, saying why; its tasks passed on their second attempt.
    expect(views.some((v) => v.attempts.made === 2)).toBe(true);
    expect(failures.some((m) => /^the batch handler of wrong-length returned 0 results for \d+ tasks; it must return one result or Error per task, in order$/.test(m))).toBe(true);
  });

  it('fails every item of a call that throws, each dead after its own attempts', async () => {
    const results = await sys.producer.enqueueBatch(Array.from({ length: 6 }, (_, n) => ({ type: 'throwing', payload: { n } })));
    const views = await finished(results.map((r) => r.task.id));
    for (const v of views) {
      expect(v).toMatchObject({ state: 'dead', attempts: { made: 2 } });
      expect(v.error).toBe('the downstream refused the whole batch');
    }
  });

  it('refuses bad batch options with a message naming the field', () => {
    expect(() => defineWorker(square, { batch: { max: 0 } }, () => [])).toThrow(/batch options of square: max/);
  });
});
