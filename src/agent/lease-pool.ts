/**
 * A pool's parts in an API process that serves HTTP workers (the lease desk, lease-desk.ts): the manual
 * BullMQ Worker that fetches with the workers' lease tokens and runs the pool's stalled check (expired
 * leases go back to waiting), the pool gate (breaker, rates, holds), the concurrency-key slots, the map
 * item runner, metrics, the processor's steps, and the jobs this process leased, by token. Jobs are
 * fetched many per call and completed by group commit, as the Node agent's (src/task/job-batch.ts).
 */
import { Job, Worker } from 'bullmq';
import type { Config } from '../config/env.ts';
import type { Logger } from '../config/logger.ts';
import type { CallbackOutbox } from '../callbacks/callback-outbox.ts';
import { AgentMetrics } from '../metrics/agent-metrics.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { Catalogue } from '../model/catalogue.ts';
import { queueName, type PoolRef } from '../model/names.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import type { LeaseRef } from '../model/worker-protocol.ts';
import type { RedisConnection } from '../redis/connection.ts';
import { backoffStrategy } from '../task/backoff-strategy.ts';
import { KeySlots } from '../task/key-slots.ts';
import { CompletionBatcher, completeJobs, takeJobs } from '../task/job-batch.ts';
import type { RunStore } from '../workflow/run-store.ts';
import { nodeSettler } from './agent-parts.ts';
import { MapItemRunner } from './map-items.ts';
import { PoolGate } from './pool-gate.ts';
import type { TaskSteps } from './processor.ts';

export interface LeasePool {
  ref: PoolRef;
  type: AgentType;
  worker: Worker<TaskEnvelope>;
  gate: PoolGate;
  slots: KeySlots;
  metrics: AgentMetrics;
  items: MapItemRunner;
  steps: TaskSteps;
  /** Jobs leased by this process, by lease token: a result that comes back here needs no read. */
  jobs: Map<string, Job<TaskEnvelope>>;
  /** Moves up to `tokens.length` ready jobs to active in one call, job i locked with tokens[i]. */
  take(tokens: readonly string[]): Promise<Array<{ job: Job<TaskEnvelope>; token: string }>>;
  /** Where the pool's completions are committed, many per call. */
  completions: CompletionBatcher;
}

export interface LeasePoolDeps {
  /** Commands and the BullMQ worker (a connection that waits out outages: maxRetriesPerRequest null). */
  redis: RedisConnection;
  /** For the gate's breaker and hold messages. */
  subscriber: RedisConnection;
  config: Pick<Config, 'prefix' | 'lockMs' | 'stalledIntervalMs' | 'maxStalled' | 'heartbeatMs'>;
  catalogue: Catalogue;
  callbacks: CallbackOutbox;
  runs: RunStore;
  log: Logger;
  /** Names this process's worker and metrics. */
  instance: string;
  /** The gate changed (breaker, hold): the pool's long polls look again. */
  wake(): void;
}

/** Jobs remembered per pool, at most (the oldest are forgotten first: they are read again when needed). */
const JOBS_KEPT = 20_000;

export async function openLeasePool(ref: PoolRef, d: LeasePoolDeps): Promise<LeasePool> {
  const { redis, subscriber, config } = d;
  const type = d.catalogue.get(ref.type);
  const log = d.log.child({ pool: `${ref.type}.${ref.pool}`, protocol: 'http' });
  const name = queueName(ref);
  const metrics = new AgentMetrics(redis, config.prefix, `http.${d.instance}.${ref.type}.${ref.pool}`, ref, true);
  const gate = new PoolGate({ redis, subscriber, prefix: config.prefix, ref, policy: type.breaker, log, onChange: () => d.wake(), limits: type.limits, onLimited: (kind) => metrics.limited(kind) });
  const slots = new KeySlots({ redis, prefix: config.prefix, type: type.name, limit: type.limits.concurrencyPerKey, leaseMs: config.lockMs, log, onHeld: () => metrics.limited('key-concurrency') });
  const items = new MapItemRunner(d.runs, redis, config.prefix, name);
  const worker = new Worker<TaskEnvelope>(name, undefined, {
    connection: redis, prefix: config.prefix, name: `http-lease-desk-${d.instance}`, lockDuration: config.lockMs,
    stalledInterval: config.stalledIntervalMs, maxStalledCount: config.maxStalled, settings: { backoffStrategy: backoffStrategy(type.defaults.backoff) }, autorun: false,
  });
  worker.on('error', (err) => log.warn({ err: err.message }, 'lease desk worker error'));
  const steps: TaskSteps = {
    definition: { type }, pool: ref.pool, log, settleNode: nodeSettler(d.runs, items),
    callback: (url, taskId, state) => d.callbacks.add({ kind: 'task', id: taskId, state, url }),
  };
  await gate.start();
  slots.start();
  metrics.start(config.heartbeatMs, false);
  // Expired leases go back to waiting (or fail after maxStalled): BullMQ's stalled check, run by this pool's worker.
  void worker.startStalledCheckTimer().catch((err: unknown) => log.warn({ err }, 'stalled check of the lease desk stopped'));
  const lease = { lockMs: config.lockMs, workerName: `http-lease-desk-${d.instance}` };
  const take = async (tokens: readonly string[]) =>
    (await takeJobs(redis, worker.keys, tokens, lease)).jobs.map((t) => ({ job: Job.fromJSON<TaskEnvelope>(worker, t.json, t.id), token: t.token }));
  const completions = new CompletionBatcher((entries) => completeJobs(redis, worker.keys, entries, { lockMs: config.lockMs }));
  return { ref, type, worker, gate, slots, metrics, items, steps, jobs: new Map(), take, completions };
}

export async function closeLeasePool(p: LeasePool): Promise<void> {
  await p.completions.flush();
  await p.worker.close();
  await Promise.all([p.gate.stop(), p.slots.stop(), p.metrics.stop(), p.items.close().catch(() => undefined)]);
}

/** Remembers a job this process leased. */
export function remember(p: LeasePool, token: string, job: Job<TaskEnvelope>): void {
  p.jobs.set(token, job);
  if (p.jobs.size > JOBS_KEPT) p.jobs.delete(p.jobs.keys().next().value!);
}

/** The leased job: remembered here, or read (it was leased by another API process, or forgotten). */
export async function leasedJob(p: LeasePool, r: LeaseRef): Promise<Job<TaskEnvelope> | undefined> {
  const known = p.jobs.get(r.lease);
  if (known?.id === r.task) return known;
  try {
    return (await Job.fromId<TaskEnvelope>(p.worker, r.task)) ?? undefined;
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return undefined; // an id naming one of the queue's own keys: no such task
    throw err;
  }
}

/** The attempt's hard limit, and when it passes (from when the task went active). */
export const timeoutOf = (p: LeasePool, job: Job<TaskEnvelope>): number => job.data?.timeoutMs ?? p.type.defaults.timeoutMs;
export const deadlineOf = (p: LeasePool, job: Job<TaskEnvelope>): number => (job.processedOn ?? Date.now()) + timeoutOf(p, job);
