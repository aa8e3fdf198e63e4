/**
 * Concurrency per key and fair order between keys: agents of a type whose `limits.concurrencyPerKey`
 * is 2 never run a third task of a key at once (counted by the handlers themselves), a held task
 * spends no attempt, a request's concurrencyLimit overrides the type's, and a key arriving behind
 * another key's backlog takes turns with it instead of waiting for all of it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Agent } from '../../src/agent/agent.ts';
import { defineWorker } from '../../src/agent/worker-definition.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { ValidationError } from '../../src/model/errors.ts';
import { TaskCanceller } from '../../src/task/cancel.ts';
import { queueName } from '../../src/model/names.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { producerSystem, silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const tenantJob = defineAgentType({
  name: 'tenant-job',
  version: '1.0.0',
  payload: z.object({ tenant: z.string(), ms: z.number() }),
  result: z.object({ ok: z.boolean() }),
  limits: { concurrencyPerKey: 2 },
});
const fairJob = defineAgentType({ name: 'fair-job', version: '1.0.0', payload: z.object({ key: z.string(), ms: z.number() }), result: z.object({ ok: z.boolean() }) });

/** The handlers' own count of running tasks per tenant, and the most each reached. */
const running = new Map<string, number>();
const most = new Map<string, number>();
const tenantWorker = defineWorker(tenantJob, async (p) => {
  const now = (running.get(p.tenant) ?? 0) + 1;
  running.set(p.tenant, now);
  most.set(p.tenant, Math.max(most.get(p.tenant) ?? 0, now));
  await sleep(p.ms);
  running.set(p.tenant, (running.get(p.tenant) ?? 1) - 1);
  return { ok: true };
});
const finished: string[] = [];
const fairWorker = defineWorker(fairJob, async (p) => {
  await sleep(p.ms);
  finished.push(p.key);
  return { ok: true };
});

const { prefix, redis } = useRedisPrefix('concurrency-key');
const sys = producerSystem(prefix, { catalogue: new Catalogue([tenantJob, fairJob]) });
const agents: Agent[] = [];

beforeAll(async () => {
  await sys.ready;
  const config = testConfig(prefix);
  for (let i = 0; i < 3; i++) agents.push(await Agent.start({ definition: tenantWorker, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 5 }));
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
});

const completed = async (type: string, n: number) => {
  const queue = new Queue(queueName({ type, pool: 'default' }), { connection: redis, prefix });
  try {
    await waitFor(async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= n, { timeoutMs: 30_000, what: `${n} ${type} tasks completed` });
  } finally {
    await queue.close();
  }
};

describe('concurrency per key', () => {
  it('runs at most the limit of a key at once across agents, and holds the rest without spending attempts', async () => {
    const tenants = ['t1', 't2', 't3'];
    const results = await sys.producer.enqueueBatch(Array.from({ length: 36 }, (_, i) => ({ type: 'tenant-job', payload: { tenant: tenants[i % 3]!, ms: 80 }, concurrencyKey: tenants[i % 3]! })));
    await completed('tenant-job', 36);
    for (const t of tenants) expect(most.get(t), `most ${t} tasks running at once`).toBe(2);
    const views = await Promise.all(results.map((r) => sys.lookup.find(r.task.id)));
    for (const v of views) expect(v).toMatchObject({ state: 'completed', attempts: { made: 1, started: 1 } });
  });

  it("takes a request's concurrencyLimit over its type's", async () => {
    most.clear();
    await sys.producer.enqueueBatch(Array.from({ length: 8 }, () => ({ type: 'tenant-job', payload: { tenant: 'solo', ms: 50 }, concurrencyKey: 'solo', concurrencyLimit: 1 })));
    await completed('tenant-job', 44);
    expect(most.get('solo')).toBe(1);
  });

  it('shows a held task as waiting for a slot of its key, not for a time', async () => {
    const [first, second] = await sys.producer.enqueueBatch([0, 1].map(() => ({ type: 'tenant-job', payload: { tenant: 'slow', ms: 1500 }, concurrencyKey: 'slow', concurrencyLimit: 1 })));
    const held = await waitFor(async () => {
      const views = await Promise.all([first!, second!].map((r) => sys.lookup.find(r.task.id)));
      return views.find((v) => v?.note?.includes('at its limit'));
    }, { what: 'one of the two tasks held' });
    expect(held).toMatchObject({ state: 'delayed', attempts: { made: 0, started: 0 } });
    expect(held.runAt).toBeUndefined();
    await completed('tenant-job', 46);
  });

  it('gives the slot of a held task that was cancelled to the next one', async () => {
    const cancel = new TaskCanceller(sys.redis, prefix, sys.queues, sys.lookup, 60);
    const ids = (await sys.producer.enqueueBatch([0, 1, 2].map(() => ({ type: 'tenant-job', payload: { tenant: 'cx', ms: 700 }, concurrencyKey: 'cx', concurrencyLimit: 1 })))).map((r) => r.task.id);
    // One runs, two are held; the first held in the key's order (the batch's) is cancelled: the other
    // must run as soon as the running one ends, not once the slot reserved for the cancelled one expires.
    const views = await waitFor(async () => {
      const vs = await Promise.all(ids.map((id) => sys.lookup.find(id)));
      return vs.filter((v) => v?.note?.includes('at its limit')).length === 2 ? vs : undefined;
    }, { what: 'two of the three tasks held' });
    const [cancelled, last] = views.filter((v) => v?.note?.includes('at its limit')).map((v) => v!.id);
    const running = views.find((v) => !v?.note)!.id;
    expect((await cancel.cancel(cancelled!)).state).toBe('cancelled');
    const done = await waitFor(async () => {
      const v = await sys.lookup.find(last!);
      return v?.state === 'completed' ? v : undefined;
    }, { timeoutMs: 10_000, what: 'the last task completed' });
    const gap = Date.parse(done.startedAt!) - Date.parse((await sys.lookup.find(running))!.finishedAt!);
    expect(gap, 'ms from the running task ending to the last one starting').toBeLessThan(500);
  });

  it('refuses a limit without a key, a priority with one, a key over 256 bytes and a limit of 0, naming the field', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ concurrencyLimit: 3 }, 'concurrencyLimit'],
      [{ concurrencyKey: 'a', priority: 5 }, 'priority'],
      [{ concurrencyKey: 'x'.repeat(257) }, 'concurrencyKey'],
      [{ concurrencyKey: 'a', concurrencyLimit: 0 }, 'concurrencyLimit'],
    ];
    for (const [extra, path] of bad) {
      let err: unknown;
      try {
        sys.producer.prepare({ type: 'tenant-job', payload: { tenant: 'a', ms: 1 }, ...extra });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(extra)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toContain(path);
    }
  });
});

describe('fair order between keys', () => {
  it("runs a key that arrives behind another key's backlog in turns with it", async () => {
    // No agent yet: the backlog of key a is all written before key b's tasks.
    await sys.producer.enqueueBatch(Array.from({ length: 200 }, () => ({ type: 'fair-job', payload: { key: 'a', ms: 5 }, concurrencyKey: 'a' })));
    await sys.producer.enqueueBatch(Array.from({ length: 10 }, () => ({ type: 'fair-job', payload: { key: 'b', ms: 5 }, concurrencyKey: 'b' })));
    agents.push(await Agent.start({ definition: fairWorker, redisUrl: REDIS_URL, config: testConfig(prefix), log: silentLog, concurrency: 1 }));
    await completed('fair-job', 210);
    const lastB = finished.lastIndexOf('b');
    // FIFO would finish b's tasks last (positions 200-209); in turns, by about the 20th.
    expect(lastB, `b's last task finished at position ${lastB} of ${finished.length}`).toBeLessThan(40);
  });
});
