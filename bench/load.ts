/**
 * Open-loop load and completion tracking for the process-based scenarios: tasks are offered at a
 * fixed rate whatever happens downstream (as real producers do), and each completion is timed
 * from the moment its task was added, through BullMQ's queue events, into an HDR histogram.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueEvents } from 'bullmq';
import * as hdr from 'hdr-histogram-js';
import { Redis } from 'ioredis';

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Adds ids in batches; returns the ids added, in order. */
export type AddBatch = (n: number) => Promise<string[]>;

/**
 * Offers `rate` tasks/s for `seconds`, in batches every `tickMs`; each added id's time goes into
 * `added`. Returns how many were offered.
 */
export async function openLoop(rate: number, seconds: number, add: AddBatch, added: Map<string, number>, tickMs = 10): Promise<number> {
  const start = performance.now();
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= seconds * 1000) break;
    const due = Math.floor((rate * elapsed) / 1000) - sent;
    if (due > 0) {
      const now = Date.now();
      const ids = await add(due);
      for (const id of ids) added.set(id, now);
      sent += due;
    }
    await sleep(tickMs);
  }
  return sent;
}

/** Counts completions on some queues and times them from their add, in ms. */
export class CompletionTracker {
  readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 });
  readonly added = new Map<string, number>();
  readonly #events: QueueEvents[];
  readonly #connections: Redis[];
  completed = 0;
  #window: { from: number; to: number; n: number } | undefined;

  constructor(redisUrl: string, prefix: string, queues: readonly string[]) {
    this.#connections = queues.map(() => new Redis(redisUrl, { maxRetriesPerRequest: null }));
    this.#events = queues.map((q, i) => new QueueEvents(q, { connection: this.#connections[i]!, prefix }));
    for (const e of this.#events) {
      e.on('error', () => undefined);
      e.on('completed', ({ jobId }) => {
        const now = Date.now();
        const at = this.added.get(jobId);
        if (at === undefined) return;
        this.added.delete(jobId);
        this.completed++;
        this.histogram.recordValue(Math.max(1, now - at));
        if (this.#window && now >= this.#window.from && now <= this.#window.to) this.#window.n++;
      });
    }
  }

  async ready(): Promise<void> {
    await Promise.all(this.#events.map((e) => e.waitUntilReady()));
  }

  /** Counts completions that land between now and `ms` from now. */
  window(ms: number): void {
    const from = Date.now();
    this.#window = { from, to: from + ms, n: 0 };
  }

  get windowCount(): number {
    return this.#window?.n ?? 0;
  }

  percentiles(): Percentiles {
    const h = this.histogram;
    return { p50: h.getValueAtPercentile(50), p95: h.getValueAtPercentile(95), p99: h.getValueAtPercentile(99), max: h.maxValue, mean: h.mean };
  }

  async close(): Promise<void> {
    await Promise.all(this.#events.map((e) => e.close()));
    for (const c of this.#connections) c.disconnect();
    this.histogram.destroy();
  }
}
