import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { SharedBreaker } from '../../src/breaker/breaker.ts';
import { fixedRouter } from '../../src/routing/fixed.ts';
import { TaskLookup } from '../../src/task/lookup.ts';
import { TaskProducer } from '../../src/task/producer.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { producerSystem, silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('agent-breaker');
const sys = producerSystem(prefix);
const policy = { failureRatio: 0.5, minRequests: 3, windowMs: 10_000, openMs: 800, halfOpenProbes: 1 };
const guarded = defineAgentType({
  name: 'guarded',
  version: '1.0.0',
  payload: z.object({ ms: z.number().default(0), smtp: z.boolean().default(false) }),
  result: z.object({ ok: z.boolean() }),
  defaults: { attempts: 5, backoff: { type: 'fixed', delayMs: 50, jitter: 0 }, timeoutMs: 5000 },
  breaker: policy,
});
const downstream = { up: true, smtpUp: true };
/** When the handler started, each time: what "nothing runs while OPEN" is checked against. */
const handlerStarts: number[] = [];
const worker = defineWorker(guarded, async (p, ctx) => {
  handlerStarts.push(Date.now());
  if (p.smtp) {
    await ctx.breaker('smtp').run(async () => {
      if (!downstream.smtpUp) throw new Error('smtp refused');
    });
    return { ok: true };
  }
  if (p.ms) await new Promise((r) => setTimeout(r, p.ms));
  if (!downstream.up) throw new Error('downstream 503');
  return { ok: true };
});
const catalogue = new Catalogue([guarded]);
const producer = new TaskProducer({ redis: sys.redis, queues: sys.queues, catalogue, router: fixedRouter, config: sys.config });
const lookup = new TaskLookup(sys.queues, catalogue, sys.redis, prefix);
const agents: Agent[] = [];
const breaker = new SharedBreaker(redis, prefix, 'pool:guarded.default', policy);

beforeAll(async () => {
  await sys.ready;
  agents.push(await Agent.start({ definition: worker, redisUrl: REDIS_URL, config: testConfig(prefix), log: silentLog, concurrency: 4 }));
});
afterAll(() => Promise.all(agents.map((a) => a.close(0))));

const enqueue = async (payload: object = {}) => (await producer.enqueue({ type: 'guarded', payload })).task.id;
const view = (id: string) => lookup.find(id);

describe('the pool breaker in a running agent', () => {
  it('opens within a few failing tasks, stops the pool pulling, and closes after a probe once fixed', async () => {
    const agent = agents[0]!;
    downstream.up = false;
    await Promise.all(Array.from({ length: 4 }, () => enqueue()));
    await waitFor(async () => (await breaker.read()).state === 'OPEN', { what: 'the breaker to open' });
    await waitFor(() => !agent.pulling, { what: 'the agent to stop pulling' });

    const halfOpenAt = Date.parse((await breaker.read()).openedAt!) + policy.openMs;
    downstream.up = true;
    const sentAt = Date.now();
    const later = await Promise.all(Array.from({ length: 6 }, () => enqueue()));
    // After openMs one probe runs; it succeeds and closes the breaker; the rest then flows.
    await waitFor(async () => (await breaker.read()).state === 'CLOSED', { timeoutMs: 5000, what: 'a probe to close the breaker' });
    const done = await waitFor(async () => {
      const views = await Promise.all(later.map(view));
      return views.every((v) => v?.state === 'completed') ? views : undefined;
    }, { what: 'the later tasks to complete' });
    // While OPEN nothing of the new work ran (a fetch already in flight may take a task, but the
    // agent's gate sends it back before the handler), and what was sent back spent no attempt.
    expect(handlerStarts.filter((t) => t >= sentAt && t < halfOpenAt)).toEqual([]);
    expect(done.map((v) => v!.attempts.made)).toEqual([1, 1, 1, 1, 1, 1]);
    expect((await breaker.read()).trips).toBe(1);
  });

  it('a handler-named breaker delays its task while open, without spending attempts', async () => {
    const smtp = new SharedBreaker(redis, prefix, 'custom:smtp', policy);
    downstream.smtpUp = false;
    const failing = await Promise.all(Array.from({ length: 3 }, () => enqueue({ smtp: true })));
    await waitFor(async () => (await smtp.read()).state === 'OPEN', { what: 'the smtp breaker to open' });
    downstream.smtpUp = true;
    const id = await enqueue({ smtp: true });
    const delayed = await waitFor(async () => ((await view(id))?.state === 'delayed' ? await view(id) : undefined), { what: 'the task to be delayed' });
    expect(delayed!.attempts.made).toBe(0);
    await waitFor(async () => (await view(id))?.state === 'completed', { timeoutMs: 8000, what: 'the delayed task to run once the breaker admits' });
    for (const f of failing) await waitFor(async () => (await view(f))?.state === 'completed', { timeoutMs: 8000, what: 'the failed ones to succeed on retry' });
  });
});
