/**
 * `npm run bench [-- <scenario>] [--jobs N] [--concurrency N] [--rounds N]`: measures Switchyard
 * against bare BullMQ in the same run and writes bench/RESULTS.md and bench/results.json.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Command } from 'commander';
import { bareBullmq, switchyard, type PhaseResult } from './throughput.ts';

const program = new Command('bench')
  .argument('[scenario]', 'throughput', 'throughput')
  .option('--jobs <n>', 'tasks per round', (v) => Number(v), 20_000)
  .option('--concurrency <n>', 'worker concurrency', (v) => Number(v), 50)
  .option('--rounds <n>', 'alternating rounds per side (medians are reported)', (v) => Number(v), 3)
  .option('--redis <url>', 'Redis to measure against', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  .parse();

const opts = program.opts<{ jobs: number; concurrency: number; rounds: number; redis: string }>();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const o = { redisUrl: opts.redis, jobs: opts.jobs, concurrency: opts.concurrency, chunk: 1000 };
const runs: { bare: PhaseResult[]; sy: PhaseResult[] } = { bare: [], sy: [] };
// Round 0 warms up the JIT and connections on both sides and is not counted.
for (let r = 0; r <= opts.rounds; r++) {
  const tag = `bench-${process.pid}-${r}`;
  if (r === 0) {
    const warm = { ...o, jobs: Math.min(o.jobs, 5000) };
    await bareBullmq(warm, `${tag}-b`);
    await switchyard(warm, `${tag}-s`);
    continue;
  }
  runs.bare.push(await bareBullmq(o, `${tag}-b`));
  process.stderr.write(`round ${r}/${opts.rounds}: bare BullMQ ${fmt(runs.bare.at(-1)!.processPerSec)} tasks/s`);
  runs.sy.push(await switchyard(o, `${tag}-s`));
  process.stderr.write(`, Switchyard ${fmt(runs.sy.at(-1)!.processPerSec)} tasks/s\n`);
}
const pick = (side: PhaseResult[], k: keyof PhaseResult) => median(side.map((x) => x[k]));
const rows = (['enqueuePerSec', 'processPerSec', 'commandsPerTask'] as const).map((k) => ({
  metric: k,
  bare: pick(runs.bare, k),
  switchyard: pick(runs.sy, k),
  ratio: pick(runs.sy, k) / pick(runs.bare, k),
}));

const command = `npm run bench -- throughput --jobs ${opts.jobs} --concurrency ${opts.concurrency} --rounds ${opts.rounds}`;
const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`;
const results = { date: new Date().toISOString(), command, machine, options: o, rows, runs };
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');

const label = { enqueuePerSec: 'enqueue, tasks/s (batches of 1 000)', processPerSec: 'process, tasks/s (no-op handler)', commandsPerTask: 'Redis commands per task (enqueue + process)' };
const table = [
  '| metric | bare BullMQ | Switchyard | Switchyard / bare |',
  '|---|---:|---:|---:|',
  ...rows.map((r) => `| ${label[r.metric]} | ${r.metric === 'commandsPerTask' ? r.bare.toFixed(1) : fmt(r.bare)} | ${r.metric === 'commandsPerTask' ? r.switchyard.toFixed(1) : fmt(r.switchyard)} | ${r.ratio.toFixed(2)} |`),
].join('\n');
const md = `# Benchmark results

Produced by \`${command}\` on ${results.date.slice(0, 10)} (${machine}), against the local Redis.
Both sides run in one process, alternating, after one warm-up round; ${opts.rounds} rounds each, medians shown. ${fmt(opts.jobs)} tasks per round,
worker concurrency ${opts.concurrency}. Absolute figures vary with the machine; the ratios are the point.

${table}
`;
writeFileSync(new URL('./RESULTS.md', import.meta.url), md);
process.stdout.write(md);
