/**
 * Latency at a low offered rate: one task at a time, `rate` per second for `seconds` (after a warm-up
 * of a second), into bare BullMQ (Queue.add + Worker) or Switchyard (TaskProducer.enqueue + Agent),
 * in this process. Each task is timed from just before its add to its worker's completion event, in
 * microseconds (HDR histogram). Batching must not buy throughput with latency at low load: this is
 * where a batch that waits for company would show.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import * as hdr from 'hdr-histogram-js';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { Agent, defineAgentType, defineWorker } from '../src/index.ts';
import { silent, startProducer } from './producer.ts';
import { deletePrefix } from './redis-stats.ts';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

export interface LatencyOptions {
  redisUrl: string;
  rate: number;
  seconds: number;
  concurrency: number;
}

/** Milliseconds, with the microseconds kept. */
export interface LatencyFigures {
  p50: number;
  p95: number;
  p99: number;
  tasks: number;
}

const noop = defineAgentType({ name: 'noop', version: '1.0.0', payload: z.object({ i: z.number() }), result: z.object({ i: z.number() }) });

/** Offers tasks one at a time at `rate`/s; `add(i)` adds task i and answers its id. */
async function offer(o: LatencyOptions, add: (i: number) => Promise<string>, started: Map<string, number>, seconds: number, from: number): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - t0;
    if (elapsed >= seconds * 1000) return sent;
    const due = Math.floor((o.rate * elapsed) / 1000) - sent;
    for (let k = 0; k < due; k++) {
      const at = performance.now();
      void add(from + sent++).then((id) => started.set(id, at));
    }
    await sleep(1);
  }
}

/** Runs the offer twice (a warm-up second, then the measured `seconds`) and reads the measured tasks' latencies. */
async function measure(o: LatencyOptions, add: (i: number) => Promise<string>, onDone: (record: (id: string) => void) => void): Promise<LatencyFigures> {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const started = new Map<string, number>();
  // The add's reply can come after the completion: an end waits here until its start is known.
  const ended = new Map<string, number>();
  let measuring = false;
  let done = 0;
  const settle = () => {
    for (const [id, end] of ended) {
      const at = started.get(id);
      if (at === undefined) continue;
      ended.delete(id);
      started.delete(id);
      done++;
      if (measuring) h.recordValue(Math.max(1, Math.round((end - at) * 1000)));
    }
  };
  onDone((id) => {
    ended.set(id, performance.now());
    settle();
  });
  const until = async (n: number) => {
    for (let i = 0; done < n; i++) {
      if (i > 12_000) throw new Error(`latency: ${n - done} tasks not completed after a minute`);
      await sleep(5);
      settle();
    }
  };
  await until(await offer(o, add, started, 1, 0));
  measuring = true;
  const before = done;
  const sent = await offer(o, add, started, o.seconds, 1_000_000);
  await until(before + sent);
  const figures = { p50: h.getValueAtPercentile(50) / 1000, p95: h.getValueAtPercentile(95) / 1000, p99: h.getValueAtPercentile(99) / 1000, tasks: h.totalCount };
  h.destroy();
  return figures;
}

export async function bareLatency(o: LatencyOptions, prefix: string): Promise<LatencyFigures> {
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('{noop.default}', { connection, prefix });
  const worker = new Worker('{noop.default}', async (job) => ({ i: (job.data as { i: number }).i }), { connection, prefix, concurrency: o.concurrency });
  await worker.waitUntilReady();
  try {
    return await measure(o, async (i) => (await queue.add('noop', { i }, { attempts: 3, removeOnComplete: { age: 3600, count: 100_000 } })).id!, (record) =>
      worker.on('completed', (job) => record(job.id!)),
    );
  } finally {
    await worker.close();
    await queue.close();
    await deletePrefix(connection, prefix);
    await connection.quit();
  }
}

/** `env`: settings for the producer and the agent (e.g. SWITCHYARD_PREFETCH=0, the agent fetching one task per call). */
export async function switchyardLatency(o: LatencyOptions, prefix: string, env: Record<string, string> = {}): Promise<LatencyFigures> {
  const sys = await startProducer(o.redisUrl, prefix, [noop], env);
  const agent = await Agent.start({ definition: defineWorker(noop, (p) => ({ i: p.i })), redisUrl: o.redisUrl, config: sys.config, log: silent, concurrency: o.concurrency });
  await sys.snapshot.refresh();
  try {
    return await measure(o, async (i) => (await sys.producer.enqueue({ type: 'noop', payload: { i } })).task.id, (record) => agent.on('completed', record));
  } finally {
    await agent.close();
    await sys.close();
    const stats = new Redis(o.redisUrl);
    await deletePrefix(stats, prefix);
    await stats.quit();
  }
}

export const LATENCY_DEFAULTS = { latencyRate: 500, latencySeconds: 10 };
export type LatencyBenchOptions = typeof LATENCY_DEFAULTS;

const SIDES = ['bare', 'sy', 'sy0'] as const;
type Side = (typeof SIDES)[number];
const LABEL: Record<Side, string> = { bare: 'bare BullMQ', sy: 'Switchyard', sy0: 'Switchyard, SWITCHYARD_PREFETCH=0' };

/** The `latency` scenario of `npm run bench`: bare BullMQ, Switchyard, and Switchyard fetching one task per call, alternating, medians of rounds. */
export async function latencyScenario(opts: BenchOptions & LatencyBenchOptions, progress: Progress): Promise<Report> {
  const o: LatencyOptions = { redisUrl: opts.redis, rate: opts.latencyRate, seconds: opts.latencySeconds, concurrency: opts.concurrency };
  const runs: Record<Side, LatencyFigures[]> = { bare: [], sy: [], sy0: [] };
  const measureSide: Record<Side, (prefix: string) => Promise<LatencyFigures>> = {
    bare: (p) => bareLatency(o, p),
    sy: (p) => switchyardLatency(o, p),
    sy0: (p) => switchyardLatency(o, p, { SWITCHYARD_PREFETCH: '0' }),
  };
  for (let r = 1; r <= opts.rounds; r++) {
    for (const side of r % 2 ? SIDES : [...SIDES].reverse()) runs[side].push(await measureSide[side](`bench-lat-${process.pid}-${r}-${side}`));
    progress(`latency round ${r}/${opts.rounds}: p50 ${SIDES.map((s) => `${LABEL[s]} ${runs[s].at(-1)!.p50} ms`).join(', ')}`);
  }
  const m = (side: Side, k: 'p50' | 'p95' | 'p99') => median(runs[side].map((x) => x[k]));
  const ms = (x: number) => fmt(x, 2);
  const text = [
    `${fmt(o.rate)} tasks/s offered one at a time for ${o.seconds} s (after a warm-up second) to one worker at concurrency ${o.concurrency}, in this one process; each task timed from just before its add to its worker's completion event. ${opts.rounds} rounds, the sides' order reversed every other round, medians.`,
    '- bare BullMQ: Queue.add + Worker (moveToActive and moveToFinished per job).',
    '- Switchyard: TaskProducer.enqueue (routing) + Agent, fetching in batches and committing by group commit (src/agent/batched-worker.ts).',
    '- Switchyard, SWITCHYARD_PREFETCH=0: the same agent fetching and completing one task per call, as BullMQ does: what the batching itself adds or saves at low load.',
    '',
    `| ms | ${SIDES.map((s) => LABEL[s]).join(' | ')} | Switchyard / bare | batched / one per call |`,
    '|---|---:|---:|---:|---:|---:|',
    ...(['p50', 'p95', 'p99'] as const).map((k) => `| ${k} | ${SIDES.map((s) => ms(m(s, k))).join(' | ')} | ${(m('sy', k) / m('bare', k)).toFixed(2)} | ${(m('sy', k) / m('sy0', k)).toFixed(2)} |`),
    '',
    `Rounds (p50 / p95 / p99): ${SIDES.map((s) => `${LABEL[s]} ${runs[s].map((x) => `${ms(x.p50)}/${ms(x.p95)}/${ms(x.p99)}`).join(', ')}`).join('; ')}.`,
  ].join('\n');
  const summary = (['p50', 'p95', 'p99'] as const).map((k) =>
    summaryRow(`latency at ${fmt(o.rate)} tasks/s offered, add → completed, ${k}, ms`, ms(m('bare', k)), ms(m('sy', k)), (m('sy', k) / m('bare', k)).toFixed(2), '≤ bare BullMQ', m('sy', k) <= m('bare', k)),
  );
  return { title: 'Latency at low load against bare BullMQ', command: `npm run bench -- latency --latency-rate ${o.rate} --latency-seconds ${o.seconds} --rounds ${opts.rounds} --concurrency ${o.concurrency}`, text, summary, data: runs };
}
