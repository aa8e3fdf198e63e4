/**
 * Delivers completion callbacks (callback-outbox.ts): a BullMQ Worker in each API process POSTs the
 * final view of the task or run, signed (model/callback.ts), with a 10 s timeout and no redirects
 * followed; anything but a 2xx is retried with the outbox's backoff, and a delivery that still fails
 * is dead-lettered (kept in the `{callbacks}` queue's failed set, logged and counted). The body is
 * built on the first attempt and kept, so every retry sends the same bytes; `Switchyard-Delivery`
 * names the delivery for receivers that dedupe.
 */
import { Worker, type Job } from 'bullmq';
import type { Logger } from '../config/logger.ts';
import { DELIVERY_HEADER, SIGNATURE_HEADER, signCallback } from '../model/callback.ts';
import { CALLBACK_QUEUE } from '../model/names.ts';
import type { RedisConnection } from '../redis/connection.ts';
import type { CallbackJob } from './callback-outbox.ts';

export interface CallbackSenderOptions {
  connection: RedisConnection;
  prefix: string;
  secret: string;
  /** The final views: a task's (GET /v1/tasks/:id) and a run's (GET /v1/workflows/:id). */
  views: { task(id: string): Promise<unknown>; run(id: string): Promise<unknown> };
  log: Logger;
  /** Told of each delivery's outcome: delivered, retrying (an attempt failed), dead. */
  onOutcome?: (outcome: 'delivered' | 'retrying' | 'dead') => void;
  concurrency?: number;
  timeoutMs?: number;
}

export class CallbackSender {
  readonly #worker: Worker<CallbackJob>;

  constructor(private readonly o: CallbackSenderOptions) {
    this.#worker = new Worker<CallbackJob>(CALLBACK_QUEUE, (job) => this.#deliver(job), {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: o.concurrency ?? 50,
      autorun: false,
    });
    this.#worker.on('error', (err) => o.log.warn({ err: err.message }, 'callback sender error'));
    this.#worker.on('completed', () => o.onOutcome?.('delivered'));
    this.#worker.on('failed', (job, err) => {
      const dead = job !== undefined && job.finishedOn !== undefined;
      o.onOutcome?.(dead ? 'dead' : 'retrying');
      if (dead) o.log.warn({ callback: job.id, url: job.data.url, attempts: job.attemptsMade, err: err.message }, 'callback dead-lettered: it failed on every attempt (kept in the {callbacks} queue)');
    });
  }

  start(): void {
    void this.#worker.run().catch((err: unknown) => this.o.log.error({ err }, 'callback sender stopped'));
  }

  async #deliver(job: Job<CallbackJob>): Promise<void> {
    let body = job.data.body;
    if (body === undefined) {
      const { kind, id, state } = job.data;
      const view = await (kind === 'task' ? this.o.views.task(id) : this.o.views.run(id));
      body = JSON.stringify({ kind, id, state, view: view ?? null });
      await job.updateData({ ...job.data, body });
    }
    const res = await fetch(job.data.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'switchyard-callbacks', [SIGNATURE_HEADER]: signCallback(this.o.secret, body, Date.now()), [DELIVERY_HEADER]: job.id ?? '' },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`${job.data.url} answered ${res.status}`);
  }

  close(): Promise<void> {
    return this.#worker.close();
  }
}
