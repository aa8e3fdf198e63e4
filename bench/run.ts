/**
 * `npm run bench [-- <scenario>] [options]`: runs one scenario or all of them (about 3 minutes on
 * 2 cores), stores each scenario's figures in bench/results.json and renders bench/RESULTS.md from
 * all stored scenarios, so running one alone keeps the others' last figures.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Command } from 'commander';
import { registryBench, type RegistryBenchResult } from './registry.ts';
import { bareBullmq, switchyard, type PhaseResult } from './throughput.ts';
import { workflowBench } from './workflow.ts';
import { seedBench } from './seed.ts';
import { memoryBench } from './memory.ts';
import { httpBench } from './http.ts';
import { routingBench } from './routing.ts';

/** One line of the summary table at the top of RESULTS.md. */
interface SummaryRow {
  figure: string;
  reference: string;
  switchyard: string;
  ratio: string;
  target: string;
  met: boolean | undefined;
}

interface Section {
  title: string;
  command: string;
  date: string;
  machine: string;
  text: string;
  summary: SummaryRow[];
  data: unknown;
}

const summaryRow = (figure: string, reference: string, switchyard: string, ratio: string, target = '', met?: boolean): SummaryRow => ({ figure, reference, switchyard, ratio, target, met });

const SCENARIOS = ['throughput', 'seed', 'routing', 'workflow', 'memory', 'registry'] as const;
type Scenario = (typeof SCENARIOS)[number];

const program = new Command('bench')
  .argument('[scenario]', `${SCENARIOS.join(' | ')} | all`, 'all')
  .option('--jobs <n>', 'throughput: tasks per round', (v) => Number(v), 20_000)
  .option('--concurrency <n>', 'throughput: worker concurrency', (v) => Number(v), 50)
  .option('--rounds <n>', 'throughput: rounds per side after a warm-up (medians are reported)', (v) => Number(v), 3)
  .option('--agents <n>', 'registry: simulated agents', (v) => Number(v), 500)
  .option('--seconds <n>', 'registry: seconds of heartbeating measured', (v) => Number(v), 10)
  .option('--shapes <LxW,...>', 'workflow: DAG shapes, layers x nodes per layer (1 000 nodes each by default)', '100x10,20x50')
  .option('--work-ms <n>', 'workflow: work per node in the makespan run', (v) => Number(v), 100)
  .option('--wf-rounds <n>', 'workflow: rounds after a warm-up', (v) => Number(v), 2)
  .option('--rate <n>', 'seed: tasks offered per second', (v) => Number(v), 2500)
  .option('--duration <s>', 'seed: seconds of load', (v) => Number(v), 15)
  .option('--saturation <s>', 'seed: seconds of overload to find the saturation point (0: skip)', (v) => Number(v), 4)
  .option('--http-seconds <s>', 'throughput: seconds of HTTP load per side', (v) => Number(v), 10)
  .option('--http-connections <n>', 'throughput: concurrent HTTP connections', (v) => Number(v), 32)
  .option('--route-rate <n>', 'routing: tasks offered per second to the slow-pool runs (half of it to the pool-loss run)', (v) => Number(v), 300)
  .option('--route-seconds <s>', 'routing: seconds of each load run', (v) => Number(v), 8)
  .option('--mem-tasks <n>', 'memory: tasks per measurement', (v) => Number(v), 10_000)
  .option('--smoke', 'every scenario in miniature, to check that the benchmarks still run (CI); writes test-output/bench-smoke/, not RESULTS.md')
  .option('--redis <url>', 'Redis to measure against', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  .parse();

const scenario = program.args[0] ?? 'all';
if (scenario !== 'all' && !(SCENARIOS as readonly string[]).includes(scenario)) {
  program.error(`unknown scenario ${JSON.stringify(scenario)}: choose ${SCENARIOS.join(', ')} or all`);
}
const opts = program.opts<{
  jobs: number; concurrency: number; rounds: number; agents: number; seconds: number; redis: string;
  shapes: string; workMs: number; wfRounds: number; rate: number; duration: number; saturation: number; memTasks: number; httpSeconds: number; httpConnections: number; routeRate: number; routeSeconds: number; smoke?: boolean;
}>();
if (opts.smoke) {
  Object.assign(opts, {
    jobs: 500, rounds: 1, httpSeconds: 1, rate: 200, duration: 2, saturation: 1, routeRate: 100, routeSeconds: 2,
    shapes: '4x5', workMs: 20, wfRounds: 1, memTasks: 300, agents: 20, seconds: 2,
  });
}
const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`;
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

async function throughput(): Promise<Section> {
  const o = { redisUrl: opts.redis, jobs: opts.jobs, concurrency: opts.concurrency, chunk: 1000 };
  const runs: { bare: PhaseResult[]; sy: PhaseResult[] } = { bare: [], sy: [] };
  // Round 0 warms up the JIT and connections on both sides and is not counted.
  for (let r = 0; r <= opts.rounds; r++) {
    const tag = `bench-${process.pid}-${r}`;
    const round = r === 0 ? { ...o, jobs: Math.min(o.jobs, 5000) } : o;
    const bare = await bareBullmq(round, `${tag}-b`);
    const sy = await switchyard(round, `${tag}-s`);
    if (r === 0) continue;
    runs.bare.push(bare);
    runs.sy.push(sy);
    progress(`throughput round ${r}/${opts.rounds}: end to end bare BullMQ ${fmt(bare.endToEndPerSec)} tasks/s, Switchyard ${fmt(sy.endToEndPerSec)} tasks/s`);
  }
  const http = await httpBench({ redisUrl: opts.redis, seconds: opts.httpSeconds, connections: opts.httpConnections }, `bench-http-${process.pid}`, progress);
  const pick = (side: PhaseResult[], k: keyof PhaseResult) => median(side.map((x) => x[k]));
  const rows = (['enqueuePerSec', 'processPerSec', 'endToEndPerSec', 'enqueueCommandsPerTask', 'commandsPerTask'] as const).map((k) => ({ k, bare: pick(runs.bare, k), sy: pick(runs.sy, k) }));
  const label = {
    enqueuePerSec: 'enqueue alone, tasks/s (batches of 1 000; Switchyard routes each task)',
    processPerSec: 'process a ready backlog, tasks/s (no-op handler)',
    endToEndPerSec: 'end to end, tasks/s (producer and worker together)',
    enqueueCommandsPerTask: 'Redis commands per task, enqueue alone',
    commandsPerTask: 'Redis commands per task (enqueue + process, all connections)',
  };
  const perCmd = (k: string) => k === 'commandsPerTask' || k === 'enqueueCommandsPerTask';
  const spread = (side: PhaseResult[]) => `${fmt(Math.min(...side.map((x) => x.endToEndPerSec)))}–${fmt(Math.max(...side.map((x) => x.endToEndPerSec)))}`;
  const text = [
    `Both sides in one process, alternating, after a warm-up round; ${opts.rounds} rounds each, medians. ${fmt(opts.jobs)} tasks per round, worker concurrency ${opts.concurrency}.`,
    'Switchyard routes every task through the live fleet snapshot (weighted strategy, eligibility, backlog limit) and its agent validates payloads and results, enforces timeouts, heartbeats, runs health checks and reports outcomes to the pool breaker.',
    '',
    '| metric | bare BullMQ | Switchyard | Switchyard / bare |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${label[r.k]} | ${fmt(r.bare, perCmd(r.k) ? 1 : 0)} | ${fmt(r.sy, perCmd(r.k) ? 1 : 0)} | ${(r.sy / r.bare).toFixed(2)} |`),
    `| HTTP ingestion, tasks/s accepted by one API process (autocannon, ${opts.httpConnections} connections, ${opts.httpSeconds} s) | ${fmt(http.bare.requestsPerSec)} | ${fmt(http.switchyard.requestsPerSec)} | ${(http.switchyard.requestsPerSec / http.bare.requestsPerSec).toFixed(2)} |`,
    `| HTTP ingestion latency p50 / p99, ms | ${http.bare.latencyMs.p50} / ${http.bare.latencyMs.p99} | ${http.switchyard.latencyMs.p50} / ${http.switchyard.latencyMs.p99} | |`,
    '',
    'The one Redis command Switchyard adds per task is on the enqueue path: BullMQ\'s add script checks that a custom job id is not taken (one EXISTS). Switchyard names its tasks (`<type>~<unique>`) so that a lookup needs no index and an interrupted idempotent request can be re-added under the same id. HTTP: the bare reference is Express with its JSON parser and one `queue.add` per request, no validation, routing or auth (bench/bare-http.ts); autocannon runs in the bench process, on the same two cores.',
    '',
    `End-to-end rate across rounds: bare ${spread(runs.bare)}, Switchyard ${spread(runs.sy)} tasks/s. On this 2-core machine Redis and Node share the cores, so single rounds swing by ±30 %; compare the ratios.`,
  ].join('\n');
  const e2e = rows.find((x) => x.k === 'endToEndPerSec')!;
  const enq = rows.find((x) => x.k === 'enqueueCommandsPerTask')!;
  const summary = [
    summaryRow('throughput end to end, tasks/s', fmt(e2e.bare), fmt(e2e.sy), (e2e.sy / e2e.bare).toFixed(2), '≥ 0.90', e2e.sy / e2e.bare >= 0.9),
    summaryRow('Redis commands per task added on the enqueue path', fmt(enq.bare, 1), fmt(enq.sy, 1), `+${fmt(enq.sy - enq.bare, 1)}`, '+0', enq.sy - enq.bare < 0.5),
    summaryRow('HTTP ingestion, tasks/s (one API process)', fmt(http.bare.requestsPerSec), fmt(http.switchyard.requestsPerSec), (http.switchyard.requestsPerSec / http.bare.requestsPerSec).toFixed(2), '≥ 5 000/s', http.switchyard.requestsPerSec >= 5000),
    summaryRow('HTTP ingestion p99, ms', fmt(http.bare.latencyMs.p99), fmt(http.switchyard.latencyMs.p99), (http.switchyard.latencyMs.p99 / http.bare.latencyMs.p99).toFixed(2), '< 50 ms', http.switchyard.latencyMs.p99 < 50),
  ];
  return { summary, title: 'Throughput against bare BullMQ', command: `npm run bench -- throughput --jobs ${opts.jobs} --concurrency ${opts.concurrency} --rounds ${opts.rounds} --http-seconds ${opts.httpSeconds} --http-connections ${opts.httpConnections}`, date: '', machine, text, data: { ...runs, http } };
}

async function registry(): Promise<Section> {
  progress(`registry: ${opts.agents} agents heartbeating for ${opts.seconds} s, then load on GET /v1/agents`);
  const r: RegistryBenchResult = await registryBench({ redisUrl: opts.redis, agents: opts.agents, seconds: opts.seconds, heartbeatMs: 1000 }, `bench-reg-${process.pid}`);
  const text = [
    `${r.agents} simulated agents (5 types × 4 pools, tags, capabilities) each heartbeat once a second through \`Registry.heartbeat\` (one Lua call), measured over ${r.seconds} s with a real API (and its housekeeper) running. Redis figures from INFO commandstats and INFO cpu.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| heartbeats/s | ${fmt(r.heartbeatsPerSec)} |`,
    `| Redis commands/s (whole server) | ${fmt(r.redisCommandsPerSec)} |`,
    `| of which with no agent (API idle) | ${fmt(r.idleRedisCommandsPerSec)} |`,
    `| Redis commands per heartbeat | ${fmt(r.commandsPerHeartbeat, 2)} |`,
    `| Redis CPU | ${fmt(r.redisCpuPercent, 1)} % of a core |`,
    `| CPU of the process sending all ${r.agents} agents' heartbeats | ${fmt(r.senderCpuPercent, 1)} % of a core |`,
    '',
    `Redis counts the commands inside a Lua script too: a heartbeat is one EVALSHA round trip running 4 commands. The busiest commands, calls/s: ${r.topCommands.map(([c, n]) => `${c} ${fmt(n)}`).join(', ')}. Besides the heartbeats, the API's fleet snapshot rereads every agent record (one HGETALL each) every 250 ms, so routing never waits on Redis.`,
    '',
    `\`GET ${r.query}\` (${r.queryMatches} matching agents) under autocannon, 4 connections, while the fleet heartbeats. autocannon, the API and the heartbeat simulator share one Node process here, so these latencies include their contention:`,
    '',
    '| p50 | p90 | p99 | max | requests/s |',
    '|---:|---:|---:|---:|---:|',
    `| ${r.latencyMs.p50} ms | ${r.latencyMs.p90} ms | ${r.latencyMs.p99} ms | ${r.latencyMs.max} ms | ${fmt(r.requestsPerSec)} |`,
  ].join('\n');
  const summary = [summaryRow(`registry: Redis CPU for ${r.agents} agents heartbeating`, '', `${fmt(r.redisCpuPercent, 1)} % of a core`, '')];
  return { summary, title: `Registry with ${r.agents} agents`, command: `npm run bench -- registry --agents ${opts.agents} --seconds ${opts.seconds}`, date: '', machine, text, data: r };
}

async function workflow(): Promise<Section> {
  const shapes = opts.shapes.split(',').map((t) => {
    const [layers, width] = t.split('x').map(Number);
    if (!layers || !width) program.error(`--shapes: ${JSON.stringify(t)} is not LAYERSxWIDTH`);
    return { layers: layers!, width: width! };
  });
  const concurrency = Math.max(...shapes.map((s) => s.width));
  const o = { redisUrl: opts.redis, shapes, workMs: opts.workMs, rounds: opts.wfRounds, agents: 2, agentConcurrency: concurrency };
  const r = await workflowBench(o, `bench-wf-${process.pid}`, progress);
  const text = [
    `Layered DAGs (every node after the first layer depends on two nodes of the layer before) with ${o.workMs} ms of work per node. The engine and producer run in the bench process (as in an API process); ${o.agents} agent processes (\`switchyard worker flaky\`, concurrency ${concurrency} each; \`flaky\` with \`latencyMs\` as the work) run the nodes. ${o.rounds} rounds after a warm-up, medians.`,
    '',
    '| DAG | critical path | makespan, POST to completed | over the critical path | engine time per layer |',
    '|---|---:|---:|---:|---:|',
    ...r.makespans.map((m) => {
      const makespan = median(m.makespansMs);
      const over = (makespan / m.criticalPathMs - 1) * 100;
      return `| ${fmt(m.nodes)} nodes: ${m.layers} layers × ${m.width} | ${fmt(m.criticalPathMs)} ms | ${fmt(makespan)} ms (${m.makespansMs.map((x) => fmt(x)).join(', ')}) | ${over >= 0 ? '+' : ''}${fmt(over, 1)} % | ${fmt((makespan - m.criticalPathMs) / m.layers, 1)} ms |`;
    }),
    '',
    'Engine time per layer is what passes between the last dependency of a layer finishing and the layer running, averaged: the settle script, the engine routing and adding the newly ready nodes, and the agents fetching them. It grows with the width of a layer: every node of a layer is settled, enqueued and fetched on the same two cores as Redis and the agents.',
    '',
    `Validation of a ${fmt(r.validation.nodes)}-node DAG: ${fmt(r.validation.coldMs)} ms on the first call in a process (zod compiling its parsers, the JIT cold), ${fmt(r.validation.warmMs)} ms warm (median of 7).`,
    '',
    `The ${fmt(r.nodes)} nodes of the first DAG with no work, as a workflow and as plain tasks (enqueued in batches of 1 000), per node:`,
    '',
    '| per node | workflow | plain tasks | workflow − tasks |',
    '|---|---:|---:|---:|',
    `| Redis commands (all connections, including those run inside Lua and BullMQ's parent/child bookkeeping) | ${fmt(r.workflow.commands, 1)} | ${fmt(r.tasks.commands, 1)} | ${fmt(r.workflow.commands - r.tasks.commands, 1)} |`,
    `| CPU of the engine's process (engine, or producer), ms | ${fmt(r.workflow.cpuMs, 3)} | ${fmt(r.tasks.cpuMs, 3)} | ${fmt(r.workflow.cpuMs - r.tasks.cpuMs, 3)} |`,
    `| wall time, ms (the workflow runs its layers one after another) | ${fmt(r.workflow.wallMs, 3)} | ${fmt(r.tasks.wallMs, 3)} | ${fmt(r.workflow.wallMs - r.tasks.wallMs, 3)} |`,
  ].join('\n');
  const deep = r.makespans[0]!;
  const deepOver = median(deep.makespansMs) / deep.criticalPathMs - 1;
  const summary = [
    ...r.makespans.map((m) => {
      const over = median(m.makespansMs) / m.criticalPathMs - 1;
      return summaryRow(`workflow makespan, ${fmt(m.nodes)} nodes (${m.layers} × ${m.width}), ms`, `${fmt(m.criticalPathMs)} (critical path)`, fmt(median(m.makespansMs)), `+${fmt(over * 100, 1)} %`, m === deep ? '≤ +10 %' : '', m === deep ? deepOver <= 0.1 : undefined);
    }),
    summaryRow('workflow: Redis commands per node (vs the same nodes as tasks)', fmt(r.tasks.commands, 1), fmt(r.workflow.commands, 1), (r.workflow.commands / r.tasks.commands).toFixed(2)),
  ];
  return { summary, title: 'Workflows', command: `npm run bench -- workflow --shapes ${opts.shapes} --work-ms ${o.workMs} --wf-rounds ${o.rounds}`, date: '', machine, text, data: r };
}

async function seed(): Promise<Section> {
  const o = { redisUrl: opts.redis, rate: opts.rate, seconds: opts.duration, processes: 4, concurrency: 30, pools: 2, failRate: 0.1, attempts: 5, saturationSeconds: opts.saturation };
  const r = await seedBench(o, `bench-seed-${process.pid}`, progress);
  const row = (label: string, b: number, s: number, digits = 0, unit = '') => `| ${label} | ${fmt(b, digits)}${unit} | ${fmt(s, digits)}${unit} | ${(s / b).toFixed(2)} |`;
  const pct = (x: number) => `${fmt(x * 100, 3)} %`;
  const text = [
    `${r.slots} slots (${o.processes} processes × ${o.concurrency}; Switchyard's in ${o.pools} pools), tasks of ${r.workMs[0]}–${r.workMs[1]} ms that fail ${o.failRate * 100} % of the time, up to ${o.attempts} attempts with exponential backoff (200 ms, ±20 % jitter), offered open loop at ${fmt(o.rate)} tasks/s for ${o.seconds} s. Bare BullMQ: one queue, workers doing the same sleep-and-fail. Switchyard: \`flaky\` agents, every task routed (weighted) by an in-process producer; their pool breakers use the \`batch\` preset (trip at 70 % failures over at least 10 calls), since failing 10 % of the time at random is this workload's normal. Latency from add to completion (queue events), HDR histogram.`,
    '',
    '| figure | bare BullMQ | Switchyard | Switchyard / bare |',
    '|---|---:|---:|---:|',
    row('completed tasks/min during the load', r.bare.completedPerMin, r.switchyard.completedPerMin),
    row('latency p50, ms', r.bare.latencyMs.p50, r.switchyard.latencyMs.p50),
    row('latency p95, ms', r.bare.latencyMs.p95, r.switchyard.latencyMs.p95),
    row('latency p99, ms', r.bare.latencyMs.p99, r.switchyard.latencyMs.p99),
    row('latency max, ms', r.bare.latencyMs.max, r.switchyard.latencyMs.max),
    `| eventual success (completed / offered) | ${pct(r.bare.eventualSuccess)} | ${pct(r.switchyard.eventualSuccess)} | |`,
    `| dead (out of attempts) | ${r.bare.dead} | ${r.switchyard.dead} | |`,
    ...(r.bare.saturation && r.switchyard.saturation
      ? [row(`saturation: tasks/s completed when offered ${fmt(r.bare.saturation.offeredPerSec)}/s (2 × the slots)`, r.bare.saturation.completedPerSec, r.switchyard.saturation.completedPerSec)]
      : []),
    ...(r.bare.deadReasons.length || r.switchyard.deadReasons.length
      ? ['', `Why dead tasks died (the first few): bare ${JSON.stringify(r.bare.deadReasons)}; Switchyard ${JSON.stringify(r.switchyard.deadReasons)}. With ${o.attempts} attempts at ${o.failRate * 100} % failure, about ${fmt(Math.pow(o.failRate, o.attempts) * 1e6, 0)} in a million tasks fail every attempt.`]
      : []),
    '',
    'Against the figures the seed claims for the same shape (120 agents, 10 % simulated failures):',
    '',
    '| figure | seed claims | Switchyard here |',
    '|---|---:|---:|',
    `| completed tasks per minute | 1 200+ | ${fmt(r.switchyard.completedPerMin)} (${fmt(r.switchyard.completedPerMin / 1200)}×) |`,
    `| average latency | < 100 ms | ${fmt(r.switchyard.latencyMs.mean)} ms (add to completion, retries included) |`,
    `| success with 10 % failures | 98 % | ${pct(r.switchyard.eventualSuccess)} |`,
  ].join('\n');
  const b = r.bare;
  const y = r.switchyard;
  const summary = [
    summaryRow('seed shape: completed tasks/min', fmt(b.completedPerMin), fmt(y.completedPerMin), (y.completedPerMin / b.completedPerMin).toFixed(2), '≥ 0.95', y.completedPerMin / b.completedPerMin >= 0.95),
    summaryRow('seed shape: p95 latency, add → done, ms', fmt(b.latencyMs.p95), fmt(y.latencyMs.p95), (y.latencyMs.p95 / b.latencyMs.p95).toFixed(2), '≤ 1.2', y.latencyMs.p95 / b.latencyMs.p95 <= 1.2),
    summaryRow('seed shape: eventual success', pct(b.eventualSuccess), pct(y.eventualSuccess), '', '≥ 99.9 %', y.eventualSuccess >= 0.999),
    ...(b.saturation && y.saturation ? [summaryRow('seed shape: saturation, tasks/s completed under 2× overload', fmt(b.saturation.completedPerSec), fmt(y.saturation.completedPerSec), (y.saturation.completedPerSec / b.saturation.completedPerSec).toFixed(2))] : []),
  ];
  return { summary, title: 'Seed shape: 120 slots, 10 % failures, open loop', command: `npm run bench -- seed --rate ${o.rate} --duration ${o.seconds} --saturation ${o.saturationSeconds}`, date: '', machine, text, data: r };
}

async function memory(): Promise<Section> {
  const r = await memoryBench({ redisUrl: opts.redis, tasks: opts.memTasks, concurrency: 100 }, `bench-mem-${process.pid}`, progress);
  const mib = (b: number) => `${fmt(b / 1048576, 1)} MiB`;
  const text = [
    `Redis memory: ${fmt(r.tasks)} waiting tasks with the same ${r.payloadBytes}-byte JSON payload, added through bare BullMQ (\`addBulk\`, attempts and removeOnComplete set) and through Switchyard's producer (routed, with its envelope); growth of \`used_memory\`, median of three tries. Process memory: peak RSS of one worker process at concurrency ${r.rss.concurrency} working through ${fmt(r.rss.tasks)} such tasks: a bare BullMQ worker process against a \`switchyard worker echo\` agent (registry, heartbeats, health checks, breaker).`,
    '',
    '| figure | bare BullMQ | Switchyard | difference |',
    '|---|---:|---:|---:|',
    `| Redis bytes per waiting task | ${fmt(r.redisBytesPerTask.bare)} | ${fmt(r.redisBytesPerTask.switchyard)} | ${r.redisBytesPerTask.switchyard >= r.redisBytesPerTask.bare ? '+' : ''}${fmt(r.redisBytesPerTask.switchyard - r.redisBytesPerTask.bare)} B |`,
    `| peak RSS of a worker process at concurrency ${r.rss.concurrency} | ${mib(r.rss.bare)} | ${mib(r.rss.switchyard)} | ${mib(r.rss.switchyard - r.rss.bare)} |`,
  ].join('\n');
  const extra = r.redisBytesPerTask.switchyard - r.redisBytesPerTask.bare;
  const summary = [
    summaryRow('Redis bytes per waiting task', fmt(r.redisBytesPerTask.bare), fmt(r.redisBytesPerTask.switchyard), `+${fmt(extra)} B`, '≤ +1 KiB', extra <= 1024),
    summaryRow(`peak RSS of a worker process at concurrency ${r.rss.concurrency}`, mib(r.rss.bare), mib(r.rss.switchyard), (r.rss.switchyard / r.rss.bare).toFixed(2)),
  ];
  return { summary, title: 'Memory', command: `npm run bench -- memory --mem-tasks ${r.tasks}`, date: '', machine, text, data: r };
}

async function routing(): Promise<Section> {
  const o = { redisUrl: opts.redis, splitTasks: 10_000, rate: opts.routeRate, seconds: opts.routeSeconds };
  const r = await routingBench(o, `bench-route-${process.pid}`, progress);
  const rr = r.slowPool['round-robin'];
  const ll = r.slowPool['least-loaded'];
  const text = [
    `Real \`flaky\` agents (concurrency 10 each) and an in-process producer routing every task; latency from add to completion (queue events, HDR histogram). Agents here use a 2 s lock and 1 s stalled check, and the dispatcher a 1 s re-route grace.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| weighted 10 : 1, share of ${fmt(r.split.tasks)} enqueued tasks in the heavy pool | ${fmt(r.split.heavyShare * 100, 2)} % (expected 90.91 %, error ${r.split.errorPct >= 0 ? '+' : ''}${fmt(r.split.errorPct, 2)} points) |`,
    `| one pool 5× slower (20 ms + 80 ms per task), ${fmt(o.rate)} tasks/s for ${o.seconds} s: p95 latency with round-robin | ${fmt(rr.p95)} ms (${fmt(rr.toSlow)} of ${fmt(rr.offered)} tasks sent to the slow pool) |`,
    `| the same with least-loaded | ${fmt(ll.p95)} ms (${fmt(ll.toSlow)} of ${fmt(ll.offered)} sent to the slow pool) |`,
    `| a pool's only agent killed (SIGKILL) mid-run at ${fmt(o.rate / 2)} tasks/s: last task routed to it after the kill | ${fmt(r.poolLoss.routedAwayAfterMs)} ms |`,
    `| … every task offered completed, ${fmt(r.poolLoss.recoveredAfterMs)} ms after the kill; tasks lost | ${fmt(r.poolLoss.lost)} of ${fmt(r.poolLoss.offered)} |`,
    '',
    'A killed agent is noticed when its heartbeats stop (UNKNOWN after two missed beats, 2 s by default): until then its pool still gets tasks. Its waiting tasks move to live pools after the re-route grace; the tasks it was running go back to waiting once their lock expires (the API runs the stalled check for a pool with no live agent), then move too.',
  ].join('\n');
  const summary = [
    summaryRow('routing: weighted 10 : 1 share, heavy pool', '90.91 %', `${fmt(r.split.heavyShare * 100, 2)} %`, `${r.split.errorPct >= 0 ? '+' : ''}${fmt(r.split.errorPct, 2)} pts`, '± 1 pt', Math.abs(r.split.errorPct) <= 1),
    summaryRow('routing: p95 with one slow pool, ms (round-robin → least-loaded)', fmt(rr.p95), fmt(ll.p95), (ll.p95 / rr.p95).toFixed(2), 'least-loaded wins', ll.p95 < rr.p95),
    summaryRow('routing: a pool killed mid-run, tasks lost', '', `${fmt(r.poolLoss.lost)} of ${fmt(r.poolLoss.offered)}`, '', '0', r.poolLoss.lost === 0),
  ];
  return { summary, title: 'Routing quality', command: `npm run bench -- routing --route-rate ${o.rate} --route-seconds ${o.seconds}`, date: '', machine, text, data: r };
}

const runners: Record<Scenario, () => Promise<Section>> = { throughput, seed, routing, workflow, memory, registry };
const outDir = opts.smoke ? new URL('../test-output/bench-smoke/', import.meta.url) : new URL('./', import.meta.url);
mkdirSync(outDir, { recursive: true });
const resultsUrl = new URL('results.json', outDir);
const stored: Partial<Record<Scenario, Section>> = existsSync(resultsUrl) && !opts.smoke ? JSON.parse(readFileSync(resultsUrl, 'utf8')) : {};
for (const name of scenario === 'all' ? SCENARIOS : [scenario as Scenario]) {
  const section = await runners[name]();
  section.date = new Date().toISOString();
  stored[name] = section;
  writeFileSync(resultsUrl, JSON.stringify(stored, null, 2) + '\n');
}

const md = [
  '# Benchmark results',
  '',
  'Written by `npm run bench` (all scenarios) or `npm run bench -- <scenario>`; each section says the command and the date that produced it. Figures are from the machine named, against its local Redis 7; absolute numbers vary with the machine, the ratios against bare BullMQ measured in the same run are the point.',
  '',
  '| figure | reference | Switchyard | ratio | target | met |',
  '|---|---:|---:|---:|---:|:---:|',
  ...SCENARIOS.filter((s) => stored[s]).flatMap((s) =>
    (stored[s]!.summary ?? []).map((r) => `| ${r.figure} | ${r.reference} | ${r.switchyard} | ${r.ratio} | ${r.target} | ${r.met === undefined ? '' : r.met ? 'yes' : '**no**'} |`),
  ),
  ...SCENARIOS.filter((s) => stored[s]).flatMap((s) => {
    const sec = stored[s]!;
    return ['', `## ${sec.title}`, '', `\`${sec.command}\`, ${sec.date.slice(0, 10)}, ${sec.machine}.`, '', sec.text];
  }),
  '',
].join('\n');
writeFileSync(new URL('RESULTS.md', outDir), md);
process.stdout.write(md);
