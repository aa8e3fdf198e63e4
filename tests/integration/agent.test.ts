import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { FatalError, RetryAfterError } from '../../src/model/errors.ts';
import { queueName } from '../../src/model/names.ts';
import flakyWorker from '../../workers/flaky.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { producerSystem, silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('agent');
const sys = producerSystem(prefix);
const config = testConfig(prefix);
const agents: Agent[] = [];

const start = async (definition: Parameters<typeof Agent.start>[0]['definition'], opts: { pool?: string; graceMs?: number } = {}) => {
  const agent = await Agent.start({
    definition,
    redisUrl: REDIS_URL,
    config: { ...config, shutdownGraceMs: opts.graceMs ?? config.shutdownGraceMs },
    log: silentLog,
    concurrency: 4,
    ...(opts.pool ? { pool: opts.pool } : {}),
  });
  agents.push(agent);
  return agent;
};

const settled = (id: string, timeoutMs = 15_000) =>
  waitFor(async () => {
    const view = await sys.lookup.find(id);
    return view && (view.state === 'completed' || view.state === 'dead') ? view : undefined;
  }, { timeoutMs, what: `task ${id} to finish` });

const strict = defineAgentType({
  name: 'strict',
  version: '1.0.0',
  payload: z.object({ mode: z.enum(['ok', 'bad-result', 'fatal', 'hang', 'slow', 'retry-after', 'throw-string', 'throw-null', 'cyclic']), ms: z.number().default(0) }),
  // Loose: extra fields pass, so a result can be valid yet not storable as JSON.
  result: z.looseObject({ value: z.number() }),
  defaults: { attempts: 3, backoff: { type: 'fixed', delayMs: 10, jitter: 0 }, timeoutMs: 300 },
});
let calls = 0;
const strictWorker = defineWorker(strict, async (p, ctx) => {
  calls++;
  if (p.mode === 'bad-result') return { value: 'not a number' } as never;
  if (p.mode === 'fatal') throw new FatalError('the card was declined');
  if (p.mode === 'throw-string') throw 'out of coffee';
  if (p.mode === 'throw-null') throw null;
  if (p.mode === 'cyclic') {
    const cyclic: { value: number; self?: unknown } = { value: 1 };
    cyclic.self = cyclic;
    return cyclic;
  }
  if (p.mode === 'retry-after' && ctx.attempt === 1) throw new RetryAfterError(p.ms, 'rate limited downstream');
  if (p.mode === 'hang') await new Promise(() => {});
  if (p.mode === 'slow') await new Promise((r) => setTimeout(r, p.ms));
  return { value: ctx.attempt };
});

beforeAll(async () => {
  await sys.ready;
  // These tests are about retries, not breakers: a flaky whose pool breaker never trips.
  await start(defineWorker({ ...flakyWorker.type, breaker: { failureRatio: 1, minRequests: 1_000_000, windowMs: 1000, openMs: 1000, halfOpenProbes: 1 } }, flakyWorker.handler));
  await start(strictWorker);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
});

describe('Agent', () => {
  it('runs a task and stores its validated result', async () => {
    const { task } = await sys.producer.enqueue({ type: 'flaky', payload: {} });
    const view = await settled(task.id);
    expect(view).toMatchObject({ state: 'completed', result: { ok: true, attempt: 1 }, attempts: { made: 1 } });
    expect(view.agent).toMatch(/^flaky\.default-/);
  });

  it('retries a retryable failure and then succeeds', async () => {
    const { task } = await sys.producer.enqueue({ type: 'flaky', payload: { failUntilAttempt: 2 }, attempts: 3 });
    const view = await settled(task.id);
    expect(view).toMatchObject({ state: 'completed', result: { attempt: 3 }, attempts: { made: 3 } });
  });

  it('shows a task whose attempt failed and whose retry is scheduled as retrying, not failed', async () => {
    const { task } = await sys.producer.enqueue({ type: 'flaky', payload: { failUntilAttempt: 1 }, attempts: 2, backoff: { type: 'fixed', delayMs: 3000, jitter: 0 } });
    const view = await waitFor(async () => {
      const v = await sys.lookup.find(task.id);
      return v && v.attempts.made === 1 ? v : undefined;
    }, { what: `task ${task.id} to fail its first attempt` });
    expect(view).toMatchObject({ state: 'retrying', errors: ['flaky failure on attempt 1'] });
    expect(view.runAt).toBeDefined();
    expect((await settled(task.id)).state).toBe('completed');
  });

  it('never shows a view whose state and attempts come from either side of a failure (lookups racing the agent)', async () => {
    const tasks = await Promise.all(Array.from({ length: 40 }, () =>
      sys.producer.enqueue({ type: 'flaky', payload: { failUntilAttempt: 1 }, attempts: 2, backoff: { type: 'fixed', delayMs: 3000, jitter: 0 } })));
    const torn: string[] = [];
    const pending = new Set(tasks.map(({ task }) => task.id));
    await waitFor(async () => {
      await Promise.all([...pending].map(async (id) => {
        const v = await sys.lookup.find(id);
        if (!v) return;
        // An active task has started one attempt more than it has finished; a retrying one has its error.
        if (v.state === 'active' && v.attempts.started <= v.attempts.made) torn.push(`${id}: active with ${JSON.stringify(v.attempts)}`);
        if (v.state === 'retrying') pending.delete(id);
      }));
      return pending.size === 0;
    }, { intervalMs: 1, what: 'every task to fail its first attempt' });
    expect(torn).toEqual([]);
  });

  it('marks a task dead once its attempts are spent, with one error per attempt', async () => {
    const { task } = await sys.producer.enqueue({ type: 'flaky', payload: { failRate: 1 }, attempts: 2 });
    const view = await settled(task.id);
    expect(view.state).toBe('dead');
    expect(view.attempts).toEqual({ made: 2, max: 2, started: 2 });
    expect(view.errors).toEqual(['flaky failure on attempt 1', 'flaky failure on attempt 2']);
  });

  it('does not retry a FatalError', async () => {
    // `strict` is known to this agent only, not to the API's catalogue: its jobs are written straight to its queue.
    const job = await enqueueRaw({ mode: 'fatal' });
    const view = await settledJob(job);
    expect(view).toMatchObject({ state: 'failed', attemptsMade: 1, failedReason: 'the card was declined' });
  });

  it('fails a payload that does not match the schema without retries, and keeps running', async () => {
    const job = await enqueueRaw({ mode: 'nonsense' });
    const view = await settledJob(job);
    expect(view.attemptsMade).toBe(1);
    expect(view.failedReason).toMatch(/payload of strict is invalid: payload\.mode: /);
    const ok = await settledJob(await enqueueRaw({ mode: 'ok' }));
    expect(ok.state).toBe('completed');
  });

  it('fails a job whose data is not a task envelope without retries', async () => {
    const job = await strictQueue.add('strict', { hello: 'world' }, { attempts: 5 });
    const view = await settledJob(job.id!);
    expect(view).toMatchObject({ state: 'failed', attemptsMade: 1 });
    expect(view.failedReason).toMatch(/task envelope is invalid/);
  });

  it('fails an invalid result without retries', async () => {
    const view = await settledJob(await enqueueRaw({ mode: 'bad-result' }));
    expect(view).toMatchObject({ state: 'failed', attemptsMade: 1 });
    expect(view.failedReason).toMatch(/result of strict is invalid: result\.value/);
  });

  it('fails a thrown string or null as an ordinary, retried error with a readable reason, and keeps running', async () => {
    const [str, nul] = await Promise.all([settledJob(await enqueueRaw({ mode: 'throw-string' })), settledJob(await enqueueRaw({ mode: 'throw-null' }))]);
    expect(str).toMatchObject({ state: 'failed', attemptsMade: 3, failedReason: 'out of coffee' });
    expect(nul).toMatchObject({ state: 'failed', attemptsMade: 3, failedReason: 'the handler threw null (not an Error)' });
    expect((await settledJob(await enqueueRaw({ mode: 'ok' }))).state).toBe('completed');
  });

  it('fails a result that cannot be stored as JSON once, without retries, and keeps running', async () => {
    const view = await settledJob(await enqueueRaw({ mode: 'cyclic' }));
    expect(view).toMatchObject({ state: 'failed', attemptsMade: 1 });
    expect(view.failedReason).toMatch(/result of strict cannot be stored as JSON: .*circular/i);
    expect((await settledJob(await enqueueRaw({ mode: 'ok' }))).state).toBe('completed');
  });

  it('waits as long as a RetryAfterError asks before the next attempt', async () => {
    const id = await enqueueRaw({ mode: 'retry-after', ms: 700 });
    // State first, then the job: a job read before its state could predate the last attempt.
    const job = await waitFor(async () => ((await strictQueue.getJobState(id)) === 'completed' ? strictQueue.getJob(id) : undefined), { what: 'the retried job' });
    expect(job.attemptsMade).toBe(2);
    expect(job.processedOn! - job.timestamp).toBeGreaterThanOrEqual(700);
  });

  it('times out an attempt past timeoutMs and retries it', async () => {
    const view = await settledJob(await enqueueRaw({ mode: 'hang' }, 2));
    expect(view).toMatchObject({ state: 'failed', attemptsMade: 2 });
    expect(view.failedReason).toMatch(/timeout/);
  });

  it('on close, lets in-flight tasks finish within the grace period', async () => {
    const agent = await start(strictWorker, { pool: 'graceful', graceMs: 5000 });
    const queue = rawQueue('graceful');
    const job = await queue.add('strict', envelope({ mode: 'slow', ms: 400 }, 1000), { attempts: 1 });
    await waitFor(async () => (await job.getState?.()) === 'active' || (await queue.getJobState(job.id!)) === 'active', { what: 'job active' });
    await agent.close();
    expect(await queue.getJobState(job.id!)).toBe('completed');
    await queue.close();
  });

  it('past the grace period, gives in-flight tasks back without spending an attempt', async () => {
    const agent = await start(strictWorker, { pool: 'impatient', graceMs: 100 });
    const queue = rawQueue('impatient');
    const job = await queue.add('strict', envelope({ mode: 'slow', ms: 5000 }, 10_000), { attempts: 1 });
    await waitFor(async () => (await queue.getJobState(job.id!)) === 'active', { what: 'job active' });
    await agent.close();
    const after = await queue.getJob(job.id!);
    expect(await after!.getState()).toBe('waiting');
    expect(after!.attemptsMade).toBe(0);
    await queue.close();
  });
});

// Helpers for the `strict` type, which only agents know about (not the API's catalogue).
const rawQueue = (pool: string) => new Queue(queueName({ type: 'strict', pool }), { connection: sys.redis, prefix });
const strictQueue = rawQueue('default');
afterAll(() => strictQueue.close());
const envelope = (payload: unknown, timeoutMs = 300) => ({
  backoff: { type: 'fixed', delayMs: 10, factor: 2, maxDelayMs: 1000, jitter: 0 },
  payload,
  timeoutMs,
  routing: { strategy: 'fixed', pool: 'default', candidates: ['default'], reason: 'test' },
});
async function enqueueRaw(payload: unknown, attempts = 3): Promise<string> {
  const job = await strictQueue.add('strict', envelope(payload), { attempts, backoff: { type: 'switchyard' } });
  return job.id!;
}
async function settledJob(id: string) {
  return waitFor(async () => {
    const state = await strictQueue.getJobState(id);
    const job = await strictQueue.getJob(id);
    return job && (state === 'completed' || state === 'failed') ? { state, attemptsMade: job.attemptsMade, failedReason: job.failedReason } : undefined;
  }, { what: `job ${id} to settle` });
}
