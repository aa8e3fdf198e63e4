/**
 * The batched add, fetch and completion (src/task/job-batch.ts, src/agent/batched-worker.ts) on real
 * Redis and BullMQ: what they leave in Redis is what BullMQ's own per-job path leaves (the same
 * jobs through a plain Worker and a BatchedWorker, compared field by field and event by event);
 * a lost lock refuses only its own job; buffered jobs keep their locks, go back on pause, and are
 * each completed once; a job that waited, never started, in a dead worker's local queue gets back the
 * stall BullMQ's stalled check counted against it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { BatchedWorker } from '../../src/agent/batched-worker.ts';
import { addJobs, completeJobs, startMarkKey, takeJobs } from '../../src/task/job-batch.ts';
import { connectRedis, useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('batched-worker');
const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

/** A queue named `{name}`: its keys share one hash slot, as every script needs on a Redis Cluster. */
function queue(name: string): Queue {
  const q = new Queue(`{${name}}`, { connection: redis, prefix });
  closers.push(() => q.close());
  return q;
}

/** A job's hash with the fields that hold times or worker ids replaced by whether they are set. */
async function jobState(q: Queue, id: string): Promise<Record<string, string>> {
  const hash = await redis.hgetall(`${prefix}:${q.name}:${id}`);
  for (const f of ['timestamp', 'processedOn', 'finishedOn', 'pb']) if (f in hash) hash[f] = 'set';
  // Switchyard's one field of its own: where a batched fetch took the job (its place in a local queue).
  if (hash.sytk !== undefined) hash.sytk = 'set';
  return hash;
}

/** The event names of the queue's stream, per job, in order. */
async function eventsPerJob(q: Queue): Promise<{ perJob: Map<string, string[]>; drained: number }> {
  const entries = (await redis.xrange(`${prefix}:${q.name}:events`, '-', '+')) as Array<[string, string[]]>;
  const perJob = new Map<string, string[]>();
  let drained = 0;
  for (const [, fields] of entries) {
    const f = Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]]] : [])));
    if (f.event === 'drained') drained++;
    if (!f.jobId) continue;
    const list = perJob.get(f.jobId) ?? [];
    list.push(`${f.event}${f.prev ? `<${f.prev}` : ''}${f.returnvalue !== undefined ? `=${f.returnvalue}` : ''}`);
    perJob.set(f.jobId, list);
  }
  return { perJob, drained };
}

async function runThrough(name: string, batched: boolean, jobs: number): Promise<Queue> {
  const q = queue(name);
  await q.addBulk(Array.from({ length: jobs }, (_, i) => ({ name: 'n', data: { i }, opts: { jobId: `j${i}`, attempts: 2, ...(i % 7 === 0 ? { priority: 1 + (i % 3) } : {}), removeOnComplete: { count: 50 } } })));
  const processor = async (job: Job) => ({ doubled: (job.data as { i: number }).i * 2 });
  const opts = { connection: redis, prefix, concurrency: 8, name: 'w', autorun: false };
  const worker = batched ? new BatchedWorker(q.name, processor, opts, { redis, prefetch: 8 }) : new Worker(q.name, processor, opts);
  closers.push(() => worker.close());
  let completed = 0;
  worker.on('completed', () => completed++);
  void worker.run();
  await waitFor(() => completed === jobs, { what: `${jobs} completions (${name})` });
  await waitFor(async () => (await eventsPerJob(q)).drained > 0, { what: 'drained' });
  await worker.close();
  return q;
}

describe('batched fetch and completion', () => {
  it('leaves what BullMQ per job leaves: job hashes, sets, counts and the events of each job', async () => {
    const n = 120;
    const [plain, batched] = [await runThrough('plain', false, n), await runThrough('batched', true, n)];
    expect(await batched.getJobCounts()).toEqual(await plain.getJobCounts());
    expect((await batched.getJobCounts()).completed).toBe(50);
    const kept = async (q: Queue) => (await redis.zrange(`${prefix}:${q.name}:completed`, '0', '-1')).sort();
    // Which 50 are kept depends on finish order; that 50 are, and that the others' hashes are gone, does not.
    const keptBatched = await kept(batched);
    expect(keptBatched).toHaveLength(50);
    for (const id of keptBatched) {
      const [a, b] = [await jobState(plain, id), await jobState(batched, id)];
      // The plain run may have evicted this id; compare where both hold it.
      if (Object.keys(a).length > 0) expect(b).toEqual({ ...a, sytk: 'set' });
      expect(b).toMatchObject({ atm: '1', ats: '1', returnvalue: JSON.stringify({ doubled: Number(id.slice(1)) * 2 }), processedOn: 'set', finishedOn: 'set', pb: 'set' });
    }
    const [ep, eb] = [await eventsPerJob(plain), await eventsPerJob(batched)];
    for (let i = 0; i < n; i++) expect(eb.perJob.get(`j${i}`), `events of j${i}`).toEqual(ep.perJob.get(`j${i}`));
    for (const q of [plain, batched]) {
      expect(await redis.llen(`${prefix}:${q.name}:active`)).toBe(0);
      expect(await redis.exists(`${prefix}:${q.name}:stalled`)).toBe(0);
      expect(await redis.exists(`${prefix}:${q.name}:pc`)).toBe(0);
    }
  });

  it('adds jobs as BullMQ\'s addBulk does: hashes, lists, priorities, counters, events, duplicates', async () => {
    const jobs = (tag: string) => [
      ...Array.from({ length: 30 }, (_, i) => ({ name: 'n', data: { i, text: 'é"\\' }, opts: { jobId: `${tag}${i}`, attempts: 3, backoff: { type: 'custom' }, removeOnComplete: { age: 3600, count: 100 }, ...(i % 4 === 0 ? { priority: 1 + (i % 3) } : {}) } })),
      { name: 'n', data: {}, opts: { jobId: `${tag}3`, attempts: 3 } }, // a duplicate in the same call
      { name: 'late', data: {}, opts: { jobId: `${tag}late`, delay: 60_000 } }, // through addBulk
    ];
    const [bulk, batch] = [queue('add-bulk'), queue('add-batch')];
    await bulk.addBulk(jobs('a'));
    const ids = await addJobs(redis, batch, jobs('a'));
    expect(ids).toEqual(jobs('a').map((j) => j.opts.jobId));
    const state = async (q: Queue) => {
      const k = (name: string) => `${prefix}:${q.name}:${name}`;
      const hashes = await Promise.all(jobs('a').map(async (j) => {
        const h = await redis.hgetall(k(j.opts.jobId));
        return { ...h, timestamp: 'set', opts: JSON.parse(h.opts!) as unknown };
      }));
      const prioritized = (await redis.zrange(k('prioritized'), '0', '-1'));
      return { hashes, wait: await redis.lrange(k('wait'), 0, -1), prioritized, delayed: await redis.zrange(k('delayed'), '0', '-1'), id: await redis.get(k('id')), marker: await redis.zrange(k('marker'), '0', '-1'), events: (await eventsPerJob(q)).perJob };
    };
    expect(await state(batch)).toEqual(await state(bulk));
  });

  it('takes jobs as BullMQ would (wait first, then by priority) and refuses only the completion whose lock is lost or another\'s', async () => {
    const q = queue('locks');
    await q.addBulk([
      { name: 'n', data: {}, opts: { jobId: 'p2', priority: 2 } },
      { name: 'n', data: {}, opts: { jobId: 'w1' } },
      { name: 'n', data: {}, opts: { jobId: 'p1', priority: 1 } },
      { name: 'n', data: {}, opts: { jobId: 'w2' } },
    ]);
    const taken = await takeJobs(redis, q.keys, ['t1', 't2', 't3', 't4', 't5'], { lockMs: 10_000, workerName: 'me' });
    expect(taken.jobs.map((j) => [j.id, j.token])).toEqual([['w1', 't1'], ['w2', 't2'], ['p1', 't3'], ['p2', 't4']]);
    expect(taken.jobs[0]!.json).toMatchObject({ name: 'n', attemptsStarted: 1, processedBy: 'me' });
    expect(await q.getActiveCount()).toBe(4);
    expect(await redis.get(`${prefix}:{locks}:w2:lock`)).toBe('t2');

    await redis.del(`${prefix}:{locks}:w1:lock`);
    await redis.set(`${prefix}:{locks}:w2:lock`, 'someone-else', 'PX', 10_000);
    const keep = { count: -1 };
    const codes = await completeJobs(redis, q.keys, [
      { id: 'w1', token: 't1', value: '1', attemptsMade: 1, keep },
      { id: 'w2', token: 't2', value: '2', attemptsMade: 1, keep },
      { id: 'p1', token: 't3', value: '3', attemptsMade: 1, keep },
    ], { lockMs: 10_000 });
    expect(codes).toEqual([-2, -6, 0]);
    // The refused ones are untouched: still active, the other token's lock still there, no result written.
    expect(await redis.get(`${prefix}:{locks}:w2:lock`)).toBe('someone-else');
    expect((await q.getJob('w1'))!.returnvalue).toBeNull();
    expect(await q.getJobState('w1')).toBe('active');
    expect(await q.getJobState('p1')).toBe('completed');
    expect(await q.getActiveCount()).toBe(3);
    // A job no longer active is refused too (its lock, like BullMQ's, is released).
    await redis.lrem(`${prefix}:{locks}:active`, 0, 'p2');
    expect(await completeJobs(redis, q.keys, [{ id: 'p2', token: 't4', value: '4', attemptsMade: 1, keep }], { lockMs: 10_000 })).toEqual([-3]);
  });

  it('gives a stall back to a job that waited, never started, in a dead worker\'s local queue', async () => {
    const q = queue('stall-back');
    await q.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: 'n', data: {}, opts: { jobId: `s${i}`, attempts: 3 } })));
    const first = await takeJobs(redis, q.keys, ['t0', 't1', 't2', 't3', 't4', 't5'], { lockMs: 10_000, localQueue: { owner: 'dead', firstPlace: 0 } });
    expect(first.jobs.map((j) => [j.id, j.place])).toEqual([['s0', 0], ['s1', 1], ['s2', 2], ['s3', 3], ['s4', 4], ['s5', 5]]);
    // Its handlers got as far as s1; then it died: its locks lapse, and BullMQ's stalled check (no stall
    // allowed: a stalled job is marked to fail) puts all six back.
    await redis.set(startMarkKey(q.keys, 'dead'), 2);
    await redis.del(...first.jobs.map((j) => `${prefix}:{stall-back}:${j.id}:lock`));
    const checker = new Worker(q.name, null, { connection: redis, prefix, autorun: false, maxStalledCount: 0 });
    closers.push(() => checker.close());
    const check = (checker as unknown as { backend: { moveStalledJobsToWait(): Promise<string[]> } }).backend;
    await check.moveStalledJobsToWait();
    await redis.del(`${prefix}:{stall-back}:stalled-check`);
    expect((await check.moveStalledJobsToWait()).sort()).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    expect((await q.getJob('s4'))!.stalledCounter).toBe(1);

    const again = await takeJobs(redis, q.keys, ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'], { lockMs: 10_000, localQueue: { owner: 'next', firstPlace: 0 } });
    const seen = new Map(again.jobs.map((j) => [j.id, { stc: j.json.stalledCounter, ats: j.json.attemptsStarted, defa: j.json.deferredFailure ?? null }]));
    const stored = async (id: string) => (await redis.hmget(`${prefix}:{stall-back}:${id}`, 'stc', 'ats', 'defa')).map((v) => v ?? null);
    for (const id of ['s0', 's1']) {
      expect(seen.get(id), id).toEqual({ stc: 1, ats: 2, defa: 'job stalled more than allowable limit' });
      expect(await stored(id)).toEqual(['1', '2', 'job stalled more than allowable limit']);
    }
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(seen.get(id), id).toEqual({ stc: 0, ats: 1, defa: null });
      expect(await stored(id)).toEqual(['0', '1', null]);
    }
  });

  it('keeps the locks of jobs waiting in its local queue, and completes each job once', async () => {
    const q = queue('renew');
    await q.addBulk(Array.from({ length: 6 }, (_, i) => ({ name: 'n', data: {}, opts: { jobId: `r${i}` } })));
    const stalled: string[] = [];
    const events = new QueueEvents(q.name, { connection: connectRedis(), prefix });
    closers.push(() => events.close());
    events.on('stalled', ({ jobId }) => stalled.push(jobId));
    await events.waitUntilReady();
    const runs = new Map<string, number>();
    const worker = new BatchedWorker(q.name, async (job) => {
      runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 700));
    }, { connection: redis, prefix, concurrency: 1, lockDuration: 500, stalledInterval: 300 }, { redis, prefetch: 5 });
    closers.push(() => worker.close());
    await waitFor(async () => (await q.getCompletedCount()) === 6, { timeoutMs: 20_000, what: 'six completions' });
    expect(stalled).toEqual([]);
    expect([...runs.values()]).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('gives its local queue back on pause, attempts not counted as started', async () => {
    const q = queue('pause');
    await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'n', data: {}, opts: { jobId: `q${i}` } })));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const worker = new BatchedWorker(q.name, async () => gate, { connection: redis, prefix, concurrency: 2 }, { redis, prefetch: 4 });
    // force: BullMQ's pause() can stay pending on a Redis Cluster (bullmq #4065; src/agent/agent.ts waits for it at most 1 s).
    closers.push(() => worker.close(true));
    await waitFor(() => worker.buffered > 0 || undefined, { what: 'jobs in the local queue' });
    void worker.pause().catch(() => undefined);
    await waitFor(async () => (await q.getActiveCount()) === 2, { what: 'only the two running left active' });
    expect(worker.buffered).toBe(0);
    release();
    await waitFor(async () => (await q.getCompletedCount()) === 2 || undefined, { what: 'the two running to complete' });
    const waiting = await q.getWaiting();
    expect(waiting).toHaveLength(8);
    for (const job of waiting) expect(job.attemptsStarted).toBe(0);
    expect(await q.getCompletedCount()).toBe(2);
  });
});
