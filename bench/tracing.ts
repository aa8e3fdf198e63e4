/**
 * What OpenTelemetry tracing costs: the throughput scenario's Switchyard side (producer and agent in this
 * process, no-op tasks, end to end) with tracing off and on, the order rotated each round, in one run. On, every
 * batch gets an enqueue span and every task a wait and an attempt span, exported over OTLP/HTTP to a
 * receiver in this process that reads and drops them (a collector's cost is not Switchyard's); and on
 * with 10 % of traces sampled, as production tracing at this rate would run.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTracing, stopTracing } from '../src/index.ts';
import { switchyard, type PhaseResult } from './throughput.ts';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

/** The share of traces the third side keeps (OTEL_TRACES_SAMPLER_ARG). */
const SAMPLED = 0.1;

export async function tracingScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const o = { redisUrl: opts.redis, jobs: opts.jobs, concurrency: opts.concurrency, chunk: 1000 };
  let exported = 0;
  let bytes = 0;
  const receiver = createServer((req, res) => {
    exported++;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const saved = { endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT, sampler: process.env.OTEL_TRACES_SAMPLER, arg: process.env.OTEL_TRACES_SAMPLER_ARG };
  const restore = (name: string, value: string | undefined) => (value === undefined ? delete process.env[name] : (process.env[name] = value));
  /** One Switchyard run with tracing on, every trace kept or a share of them. */
  const traced = async (round: typeof o, prefix: string, ratio?: number): Promise<PhaseResult> => {
    // The exporter reads its endpoint from the environment when it is made.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    if (ratio !== undefined) Object.assign(process.env, { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: String(ratio) });
    if (!(await startTracing('switchyard-bench'))) throw new Error('tracing did not start');
    try {
      return await switchyard(round, prefix);
    } finally {
      await stopTracing();
      restore('OTEL_EXPORTER_OTLP_ENDPOINT', saved.endpoint);
      restore('OTEL_TRACES_SAMPLER', saved.sampler);
      restore('OTEL_TRACES_SAMPLER_ARG', saved.arg);
    }
  };
  const runs: { off: PhaseResult[]; on: PhaseResult[]; sampled: PhaseResult[] } = { off: [], on: [], sampled: [] };
  try {
    for (let r = 0; r <= opts.rounds; r++) {
      const round = r === 0 ? { ...o, jobs: Math.min(o.jobs, 5000) } : o;
      // The sides take turns going first (a round's later runs find a warmer, or a busier, machine).
      const sides = {
        off: () => switchyard(round, `bench-trace-${process.pid}-${r}-off`),
        on: () => traced(round, `bench-trace-${process.pid}-${r}-on`),
        sampled: () => traced(round, `bench-trace-${process.pid}-${r}-sampled`, SAMPLED),
      };
      const order = (['off', 'on', 'sampled'] as const).map((_, i, all) => all[(i + r) % all.length]!);
      const got: Partial<Record<keyof typeof sides, PhaseResult>> = {};
      for (const side of order) got[side] = await sides[side]();
      const { off, on, sampled } = got as Record<keyof typeof sides, PhaseResult>;
      if (r === 0) continue;
      runs.off.push(off);
      runs.on.push(on);
      runs.sampled.push(sampled);
      progress(`tracing round ${r}/${opts.rounds}: end to end ${fmt(off.endToEndPerSec)} tasks/s off, ${fmt(on.endToEndPerSec)} on, ${fmt(sampled.endToEndPerSec)} on with ${SAMPLED * 100} % of traces sampled`);
    }
  } finally {
    await stopTracing();
    await new Promise((r) => receiver.close(r));
  }
  const pick = (side: PhaseResult[], k: keyof PhaseResult) => median(side.map((x) => x[k]));
  const rows = (['enqueuePerSec', 'processPerSec', 'endToEndPerSec'] as const).map((k) => ({ k, off: pick(runs.off, k), on: pick(runs.on, k), sampled: pick(runs.sampled, k) }));
  const label = { enqueuePerSec: 'enqueue alone, tasks/s (batches of 1 000)', processPerSec: 'process a ready backlog, tasks/s', endToEndPerSec: 'end to end, tasks/s' };
  const e2e = rows.find((x) => x.k === 'endToEndPerSec')!;
  const text = [
    `Switchyard's side of the throughput scenario (producer and agent in the bench process, ${fmt(opts.jobs)} no-op tasks per round, concurrency ${opts.concurrency}), with tracing off, on, and on sampled, each round in a rotated order, after a warm-up; ${opts.rounds} rounds each, medians. On: OTEL_EXPORTER_OTLP_ENDPOINT pointed at a receiver in the bench process that reads each export and drops it (${fmt(exported)} exports, ${fmt(bytes / 1e6, 1)} MB of OTLP JSON over all rounds); the SDK's batch span processor as configured by default (a queue of 2 048 spans, batches of 512 every 5 s: under this load it drops what does not fit, as it would in production, rather than slowing the tasks).`,
    '',
    `| metric | tracing off | tracing on, every trace | on / off | on, ${SAMPLED * 100} % of traces (parentbased_traceidratio) | that / off |`,
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${label[r.k]} | ${fmt(r.off)} | ${fmt(r.on)} | ${(r.on / r.off).toFixed(2)} | ${fmt(r.sampled)} | ${(r.sampled / r.off).toFixed(2)} |`),
    '',
    "Off, nothing of the SDK is loaded: the producer, the processor and the HTTP edge each check one boolean (the throughput scenario's Switchyard / bare ratio is the figure to compare across commits for that).",
  ].join('\n');
  const summary = [
    summaryRow('tracing on (every trace), end to end, tasks/s (vs off)', fmt(e2e.off), fmt(e2e.on), (e2e.on / e2e.off).toFixed(2), '≥ 0.90', e2e.on / e2e.off >= 0.9),
    summaryRow(`tracing on, ${SAMPLED * 100} % of traces sampled, end to end, tasks/s (vs off)`, fmt(e2e.off), fmt(e2e.sampled), (e2e.sampled / e2e.off).toFixed(2), '', undefined),
  ];
  return { summary, title: 'Tracing (OpenTelemetry) on against off', command: `npm run bench -- tracing --jobs ${opts.jobs} --concurrency ${opts.concurrency} --rounds ${opts.rounds}`, text, data: runs };
}
