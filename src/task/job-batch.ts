/**
 * BullMQ jobs added, taken and completed many per Redis call, on BullMQ's own key layout and Lua
 * includes (src/redis/lua/job-batch-*.lua; tests/unit/bullmq-pin.test.ts pins the BullMQ they were
 * written against): `addJobs` adds many jobs as BullMQ's addBulk would, in one script call instead of
 * one per job; `takeJobs` moves up to N ready jobs to active, each locked
 * with its own token, as N of BullMQ's moveToActive calls would; `completeJobs` commits many
 * results, each refused when its lock is missing or another's; `CompletionBatcher` groups the
 * completions of a worker into those calls (group commit: a few calls in flight, the next batch is
 * whatever finished meanwhile, so a lone completion is committed at once).
 *
 * For queues without flows or deduplication (Switchyard's): a completed job's parent and its
 * deduplication key are not looked at.
 */
import { Job, type JobJson, type JobsOptions, type KeepJobs, type Queue } from 'bullmq';
import { raw2NextJobData } from 'bullmq/dist/cjs/classes/redis-queue-backend.js';
import { optsEncodeMap } from 'bullmq/dist/cjs/utils/index.js';
import type { RedisConnection } from '../redis/connection.ts';
import { scripts } from '../redis/scripts.ts';


/** The BullMQ keys of one queue (a Queue's or Worker's `keys`: `''` is the jobs' key prefix). */
export type QueueKeys = Readonly<Record<string, string>>;

export interface NewJob {
  name: string;
  data: unknown;
  opts?: JobsOptions;
}

/** A job's options as BullMQ stores them (its optsAsJSON: short names, telemetry split, undefined dropped). */
function storedOpts(opts: JobsOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    if (name in optsEncodeMap) out[optsEncodeMap[name]!] = value;
    else if (name === 'telemetry') {
      const t = value as NonNullable<JobsOptions['telemetry']>;
      if (t.metadata !== undefined) out.tm = t.metadata;
      if (t.omitContext !== undefined) out.omc = t.omitContext;
    } else out[name] = value;
  }
  return out;
}

/**
 * Jobs per add script call. Enqueue alone ran 63-68k tasks/s at 200 against 56-58k at 1 000 per call, and
 * end to end 22-23k against 21-22k (bench/throughput.ts's Switchyard side, two runs each, this machine).
 */
const ADD_CHUNK = 200;

/** Whether the batch script adds this job as BullMQ would: a custom id, and no parent, delay, deduplication, repeat or LIFO. */
const batchable = (job: Job): boolean =>
  job.id !== undefined && !job.parentKey && !job.deduplicationId && !job.repeatJobKey && !(job.opts.delay && job.opts.delay > 0) && !job.opts.lifo;

/**
 * Adds jobs to `queue` as its addBulk would (the same Job objects, checks and stored fields): those
 * batchable in one script call, any others through addBulk. Answers the ids, in order (an existing
 * id is not added again, and answered, as BullMQ answers a duplicate).
 */
export async function addJobs(redis: RedisConnection, queue: Queue, jobs: readonly NewJob[]): Promise<string[]> {
  const made = jobs.map((j) => new Job(queue, j.name, j.data, { ...queue.jobsOpts, ...j.opts }, j.opts?.jobId));
  const inBatch: number[] = [];
  const others: number[] = [];
  const perJob: Array<Array<string | number>> = [];
  made.forEach((job, i) => {
    const json = job.asJSON();
    (job as unknown as { validateOptions(json: JobJson): void }).validateOptions(json);
    if (!batchable(job)) return void others.push(i);
    inBatch.push(i);
    perJob.push([job.id!, job.name, json.data, JSON.stringify(storedOpts(job.opts)), job.timestamp]);
  });
  const k = queue.keys;
  const keys = [k.wait!, k.meta!, k.id!, k.prioritized!, k.completed!, k.active!, k.events!, k.marker!, k.pc!];
  // Calls of ADD_CHUNK jobs, sent together: Redis runs other clients' commands (workers' fetches and
  // commits) between them instead of waiting out one long script.
  const calls: Array<Promise<string[]>> = [];
  for (let i = 0; i < perJob.length; i += ADD_CHUNK) calls.push(scripts.jobBatchAdd.run(redis, keys, [k['']!, ...perJob.slice(i, i + ADD_CHUNK).flat()]));
  const [batchIds, otherJobs] = await Promise.all([
    Promise.all(calls).then((r) => r.flat()),
    others.length > 0 ? queue.addBulk(others.map((i) => jobs[i]!)) : [],
  ]);
  const ids: string[] = [];
  inBatch.forEach((i, j) => (ids[i] = batchIds[j]!));
  others.forEach((i, j) => (ids[i] = otherJobs[j]!.id!));
  return ids;
}

export interface TakenJob {
  id: string;
  /** As BullMQ's Worker builds a job from (nextJobFromJobData). */
  json: JobJson;
  token: string;
  /** Its place in the local queue it was taken for (TakeOptions.localQueue). */
  place?: number;
}

export interface Taken {
  jobs: TakenJob[];
  /** The queue's rate limit holds for this long (ms); 0 when it does not. */
  limitMs: number;
  /** When the next delayed job is due (ms since the epoch), when nothing was taken; 0 for none. */
  nextDelayedAt: number;
}

export interface TakeOptions {
  lockMs: number;
  /** Stored as the job's processedBy (BullMQ's `pb`), as the Worker's `name` option is. */
  workerName?: string | undefined;
  /**
   * The jobs go to a local queue, to wait there for a handler: each records its place, from `firstPlace`
   * on, so a stall it takes while waiting there, never started, is given back when it is taken again
   * (job-batch-take.lua; the owner marks how far its handlers got with `startMark`).
   */
  localQueue?: { owner: string; firstPlace: number };
}

/** How long a local queue's start mark lives after its last write (ms): it must outlast a dead owner's jobs waiting to be taken again. */
export const START_MARK_MS = 7 * 24 * 3600_000;

/** The key where a local queue's owner marks how far its handlers have got: places below its value were handed to a handler. */
export const startMarkKey = (k: QueueKeys, owner: string): string => `${k['']!}sy:started:${owner}`;

/** Moves up to `tokens.length` ready jobs to active, job i locked with tokens[i]. */
export async function takeJobs(redis: RedisConnection, k: QueueKeys, tokens: readonly string[], opts: TakeOptions, now = Date.now()): Promise<Taken> {
  const keys = [k.wait!, k.active!, k.prioritized!, k.events!, k.stalled!, k.limiter!, k.delayed!, k.paused!, k.meta!, k.pc!, k.marker!];
  const lq = opts.localQueue;
  const reply = await scripts.jobBatchTake.run(redis, keys, [k['']!, now, opts.lockMs, opts.workerName ?? '', lq?.owner ?? '', lq?.firstPlace ?? 0, START_MARK_MS, ...tokens]);
  const jobs: TakenJob[] = [];
  for (let i = 2; i < reply.length; i += 2) {
    const id = reply[i] as string;
    const [json] = raw2NextJobData([reply[i + 1], id]) as [JobJson];
    const n = jobs.length;
    jobs.push(lq ? { id, json, token: tokens[n]!, place: lq.firstPlace + n } : { id, json, token: tokens[n]! });
  }
  return { jobs, limitMs: Number(reply[0]), nextDelayedAt: Number(reply[1]) };
}

export interface Completion {
  id: string;
  token: string;
  /** The return value as BullMQ stores it (JSON). */
  value: string;
  /** The job's attemptsMade after this attempt. */
  attemptsMade: number;
  /** What to keep of completed jobs (BullMQ's removeOnComplete, resolved: see keepOf). */
  keep: KeepJobs;
}

/** BullMQ's reading of a job's removeOnComplete over the worker's (its getKeepJobs). */
export function keepOf(jobs: boolean | number | KeepJobs | undefined, worker: KeepJobs | undefined): KeepJobs {
  if (jobs === undefined) return worker ?? { count: -1 };
  if (typeof jobs === 'object') return jobs;
  if (typeof jobs === 'number') return { count: jobs };
  return { count: jobs ? 0 : -1 };
}

/** What completeJobs answers per job: committed, or refused as BullMQ would (its finishedErrors codes). */
export const COMMITTED = 0;

export interface CompleteOptions {
  lockMs: number;
  /** BullMQ's metrics option (maxDataPoints), when the worker collects metrics. */
  metricsMax?: number | undefined;
}

/** Commits completions sharing one keep spec: one code per entry (0, or -2 no lock, -6 another's lock, -3 not active). */
export async function completeJobs(redis: RedisConnection, k: QueueKeys, entries: readonly Completion[], opts: CompleteOptions, now = Date.now()): Promise<number[]> {
  const keep = entries[0]?.keep ?? { count: -1 };
  const keys = [k.wait!, k.active!, k.prioritized!, k.events!, k.stalled!, k.meta!, k.completed!, `${k['']}metrics:completed`];
  const age = 'age' in keep ? keep : undefined;
  const args: (string | number)[] = [k['']!, now, opts.lockMs, keep.count ?? '', age?.age ?? '', age?.limit ?? '', opts.metricsMax ?? ''];
  for (const e of entries) args.push(e.id, e.token, e.value, e.attemptsMade);
  return scripts.jobBatchComplete.run(redis, keys, args);
}

/**
 * Completes one job through `batcher` with its lock token; on success the Job object is updated as
 * BullMQ's own moveToCompleted updates it (returnvalue, finishedOn, attemptsMade). Answers the code
 * (COMMITTED, or why it was refused: nothing was written then). A result JSON cannot hold throws.
 */
export async function commitCompletion(batcher: CompletionBatcher, job: Job, token: string, result: unknown, workerKeep?: KeepJobs): Promise<number> {
  const value = JSON.stringify(result) ?? 'null';
  const finishedOn = Date.now();
  const code = await batcher.add({ id: job.id!, token, value, attemptsMade: job.attemptsMade + 1, keep: keepOf(job.opts.removeOnComplete, workerKeep) });
  if (code === COMMITTED) {
    job.returnvalue = result;
    job.finishedOn = finishedOn;
    job.attemptsMade += 1;
  }
  return code;
}

interface Pending {
  entry: Completion;
  resolve: (code: number) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit of completions: `add` resolves with the entry's code once its batch is committed.
 * At most `lanes` calls are in flight; entries added meanwhile form the next (at most `max`, one call
 * per keep spec), so a lone completion is committed at once. A failed call rejects the entries it carried.
 */
export class CompletionBatcher {
  #pending: Pending[] = [];
  #running = 0;
  #idle: Array<() => void> = [];

  constructor(
    private readonly commit: (entries: Completion[]) => Promise<number[]>,
    private readonly max = 256,
    /** Calls in flight at once (3: Node builds the next batch while Redis runs the last; measured in bench/RESULTS.md's throughput run). */
    private readonly lanes = 3,
  ) {}

  add(entry: Completion): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#pending.push({ entry, resolve, reject });
      if (this.#running < this.lanes) {
        this.#running++;
        void this.#drain();
      }
    });
  }

  /** Resolves once everything added so far is committed (or refused). */
  flush(): Promise<void> {
    return this.#running === 0 ? Promise.resolve() : new Promise((r) => this.#idle.push(r));
  }

  async #drain(): Promise<void> {
    // Started from add(): let the completions of this tick join the first batch.
    await Promise.resolve();
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, this.max);
        const specs = new Map<string, Pending[]>();
        for (const p of batch) {
          const spec = JSON.stringify(p.entry.keep);
          const same = specs.get(spec);
          if (same) same.push(p);
          else specs.set(spec, [p]);
        }
        await Promise.all([...specs.values()].map((group) => this.#commit(group)));
      }
    } finally {
      if (--this.#running === 0) for (const r of this.#idle.splice(0)) r();
    }
  }

  async #commit(group: Pending[]): Promise<void> {
    try {
      const codes = await this.commit(group.map((p) => p.entry));
      group.forEach((p, i) => p.resolve(codes[i] ?? -3));
    } catch (err) {
      for (const p of group) p.reject(err);
    }
  }
}
