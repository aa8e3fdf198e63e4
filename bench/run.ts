/**
 * `npm run bench [-- <scenario>] [options]`: runs one scenario or all of them (about 6 minutes on
 * 2 cores), stores each scenario's figures in bench/results.json and renders bench/RESULTS.md from
 * all stored scenarios, so running one alone keeps the others' last figures.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Command } from 'commander';
import { CLUSTER_DEFAULTS, clusterScenario, type ClusterBenchOptions } from './cluster.ts';
import { DASHBOARD_DEFAULTS, dashboardScenario, type DashboardBenchOptions } from './dashboard.ts';
import { durabilityScenario } from './durability.ts';
import { FLOW_DEFAULTS, flowScenario, type FlowBenchOptions } from './flow.ts';
import { memoryScenario } from './memory.ts';
import { registryScenario } from './registry.ts';
import type { BenchOptions, Progress, Report } from './report.ts';
import { routingScenario } from './routing.ts';
import { seedScenario } from './seed.ts';
import { throughputScenario } from './throughput.ts';
import { tracingScenario } from './tracing.ts';
import { httpWorkerScenario, type HttpWorkerBenchOptions } from './http-worker.ts';
import { PEERS_DEFAULTS, peersScenario, type PeersBenchOptions } from './peers.ts';
import { LATENCY_DEFAULTS, latencyScenario, type LatencyBenchOptions } from './latency.ts';
import { workflowScenario } from './workflow.ts';
import { DURABLE_DEFAULTS, workflowDurableScenario, type DurableBenchOptions } from './workflow-durable.ts';

interface Section extends Report {
  date: string;
  machine: string;
}

const SCENARIOS = ['throughput', 'seed', 'routing', 'workflow', 'memory', 'registry', 'durability', 'cluster', 'dashboard', 'flow', 'workflow-durable', 'tracing', 'http-worker', 'peers', 'latency'] as const;
type Scenario = (typeof SCENARIOS)[number];

const program = new Command('switchyard bench')
  .description('benchmarks of Switchyard against bare BullMQ, in one run (`npm run bench -- ...` inside the repository)')
  .argument('[scenario]', `${SCENARIOS.join(' | ')} | all`, 'all')
  .option('--jobs <n>', 'throughput: tasks per round', (v) => Number(v), 20_000)
  .option('--concurrency <n>', 'throughput: worker concurrency', (v) => Number(v), 50)
  .option('--rounds <n>', 'throughput: rounds per side after a warm-up (medians are reported)', (v) => Number(v), 5)
  .option('--agents <n>', 'registry: simulated agents', (v) => Number(v), 500)
  .option('--seconds <n>', 'registry: seconds of heartbeating measured', (v) => Number(v), 10)
  .option('--shapes <LxW,...>', 'workflow: DAG shapes, layers x nodes per layer (1 000 nodes each by default)', '100x10,20x50')
  .option('--work-ms <n>', 'workflow: work per node in the makespan run', (v) => Number(v), 100)
  .option('--wf-rounds <n>', 'workflow: rounds after a warm-up', (v) => Number(v), 2)
  .option('--map-items <n>', 'workflow: items of the map node', (v) => Number(v), 10_000)
  .option('--map-concurrency <n>', 'workflow: the map node\'s concurrency', (v) => Number(v), 200)
  .option('--rate <n>', 'seed: tasks offered per second', (v) => Number(v), 2500)
  .option('--duration <s>', 'seed: seconds of load', (v) => Number(v), 15)
  .option('--saturation <s>', 'seed: seconds of overload to find the saturation point (0: skip)', (v) => Number(v), 4)
  .option('--http-seconds <s>', 'throughput: seconds of HTTP load per side', (v) => Number(v), 10)
  .option('--http-connections <n>', 'throughput: concurrent HTTP connections', (v) => Number(v), 32)
  .option('--route-rate <n>', 'routing: tasks offered per second to the slow-pool runs (half of it to the pool-loss run)', (v) => Number(v), 300)
  .option('--route-seconds <s>', 'routing: seconds of each load run', (v) => Number(v), 8)
  .option('--mem-tasks <n>', 'memory: tasks per measurement', (v) => Number(v), 10_000)
  .option('--dur-jobs <n>', 'durability: tasks per throughput run on each Redis setting', (v) => Number(v), 5000)
  .option('--dur-rounds <n>', 'durability: rounds over the three Redis settings, in alternating order (means are reported)', (v) => Number(v), 2)
  .option('--kills <n>', 'durability: Redis SIGKILLs per AOF setting after --kill-after-ms (everysec gets one more, aimed at a background fsync)', (v) => Number(v), 2)
  .option('--kill-after-ms <n>', 'durability: ms of adding before each SIGKILL', (v) => Number(v), 700)
  .option('--cluster-shards <n,...>', 'cluster: master counts to measure, each on a fresh local Redis Cluster (the ratio is last / first)', CLUSTER_DEFAULTS.clusterShards)
  .option('--cluster-jobs <n>', 'cluster: tasks per round', (v) => Number(v), CLUSTER_DEFAULTS.clusterJobs)
  .option('--cluster-rounds <n>', 'cluster: rounds per cluster after a warm-up (medians are reported)', (v) => Number(v), CLUSTER_DEFAULTS.clusterRounds)
  .option('--cluster-pools <n>', 'cluster: pools of the echo type, their queues spread over the masters', (v) => Number(v), CLUSTER_DEFAULTS.clusterPools)
  .option('--cluster-agents <n>', 'cluster: agent processes, spread over the pools', (v) => Number(v), CLUSTER_DEFAULTS.clusterAgents)
  .option('--cluster-producers <n>', 'cluster: producer processes', (v) => Number(v), CLUSTER_DEFAULTS.clusterProducers)
  .option('--cluster-concurrency <n>', 'cluster: concurrency of each agent', (v) => Number(v), CLUSTER_DEFAULTS.clusterConcurrency)
  .option('--cluster-appendfsync <mode>', 'cluster: AOF fsync of every node: always (as Switchyard spawns Redis), everysec or no', CLUSTER_DEFAULTS.clusterAppendfsync)
  .option('--dashboards <n>', 'dashboard: open dashboards polling while tasks are enqueued', (v) => Number(v), DASHBOARD_DEFAULTS.dashboards)
  .option('--dash-runs <n>', 'dashboard: workflow runs that exist (running) meanwhile', (v) => Number(v), DASHBOARD_DEFAULTS.dashRuns)
  .option('--dash-nodes <n>', 'dashboard: nodes per run', (v) => Number(v), DASHBOARD_DEFAULTS.dashNodes)
  .option('--dash-seconds <s>', 'dashboard: seconds of enqueueing per measurement', (v) => Number(v), DASHBOARD_DEFAULTS.dashSeconds)
  .option('--dash-rate <n>', 'dashboard: tasks/s offered to POST /v1/tasks', (v) => Number(v), DASHBOARD_DEFAULTS.dashRate)
  .option('--dash-interval-ms <n>', "dashboard: each dashboard's poll interval (the page's is 2 000)", (v) => Number(v), DASHBOARD_DEFAULTS.dashIntervalMs)
  .option('--dash-open <n>', 'dashboard: dashboards with a run open (they also read its first 200 nodes)', (v) => Number(v), DASHBOARD_DEFAULTS.dashOpen)
  .option('--dash-before <ref>', 'dashboard: measure this git ref (its API and page) first, for comparison', DASHBOARD_DEFAULTS.dashBefore)
  .option('--flow-rate <n>', 'flow: tasks/s of the rate per pool measured', (v) => Number(v), FLOW_DEFAULTS.flowRate)
  .option('--flow-rate-seconds <s>', 'flow: seconds the rate per pool is measured over', (v) => Number(v), FLOW_DEFAULTS.flowRateSeconds)
  .option('--flow-schedules <n>', 'flow: schedules whose Redis footprint and idle cost are measured', (v) => Number(v), FLOW_DEFAULTS.flowSchedules)
  .option('--flow-idle-seconds <s>', 'flow: seconds of idle CPU measured, without and with the schedules', (v) => Number(v), FLOW_DEFAULTS.flowIdleSeconds)
  .option('--flow-minutes <n>', 'flow: minutes (ticks) of the every-minute schedule run under faults', (v) => Number(v), FLOW_DEFAULTS.flowMinutes)
  .option('--flow-kill-every <n>', 'flow: minutes between SIGKILLs of an API process in that run', (v) => Number(v), FLOW_DEFAULTS.flowKillEvery)
  .option('--flow-fair-a <n>', "flow: key a's backlog in the fairness run", (v) => Number(v), FLOW_DEFAULTS.flowFairA)
  .option('--flow-fair-b <n>', "flow: key b's tasks, enqueued behind a's backlog", (v) => Number(v), FLOW_DEFAULTS.flowFairB)
  .option('--flow-limit-tasks <n>', 'flow: tasks of the limit-per-key run (50 keys, limit 3, one agent SIGKILLed)', (v) => Number(v), FLOW_DEFAULTS.flowLimitTasks)
  .option('--durable-runs <n>', 'workflow-durable: runs asleep at once', (v) => Number(v), DURABLE_DEFAULTS.durableRuns)
  .option('--durable-idle-s <s>', 'workflow-durable: seconds of CPU measured, without runs and with them asleep', (v) => Number(v), DURABLE_DEFAULTS.durableIdleS)
  .option('--durable-spread-s <s>', 'workflow-durable: seconds the wake times are spread over', (v) => Number(v), DURABLE_DEFAULTS.durableSpreadS)
  .option('--webhook-rate <n>', 'workflow-durable: tasks with a callback per second while the receiver refuses', (v) => Number(v), DURABLE_DEFAULTS.webhookRate)
  .option('--webhook-down-s <s>', 'workflow-durable: seconds the receiver refuses connections', (v) => Number(v), DURABLE_DEFAULTS.webhookDownS)
  .option('--lease-rate <n>', 'http-worker: tasks offered per second in the lease-to-result latency run', (v) => Number(v), 500)
  .option('--lease-seconds <s>', 'http-worker: seconds of that run per side', (v) => Number(v), 10)
  .option('--peers-database-url <url>', 'peers: PostgreSQL for graphile-worker and pg-boss (each in its own schema, dropped after each round); skipped if none answers', PEERS_DEFAULTS.peersDatabaseUrl)
  .option('--latency-rate <n>', 'latency: tasks offered per second, one at a time', (v) => Number(v), LATENCY_DEFAULTS.latencyRate)
  .option('--latency-seconds <s>', 'latency: seconds measured per side and round', (v) => Number(v), LATENCY_DEFAULTS.latencySeconds)
  .option('--smoke', 'every scenario in miniature, to check that the benchmarks still run (CI); writes test-output/bench-smoke/, not RESULTS.md')
  .option('--redis <url>', 'Redis to measure against', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  .parse();

const scenario = program.args[0] ?? 'all';
if (scenario !== 'all' && !(SCENARIOS as readonly string[]).includes(scenario)) {
  program.error(`unknown scenario ${JSON.stringify(scenario)}: choose ${SCENARIOS.join(', ')} or all`);
}
const opts = program.opts<BenchOptions & ClusterBenchOptions & DashboardBenchOptions & FlowBenchOptions & DurableBenchOptions & HttpWorkerBenchOptions & PeersBenchOptions & LatencyBenchOptions>();
if (opts.smoke) {
  Object.assign(opts, {
    jobs: 500, rounds: 1, httpSeconds: 1, rate: 200, duration: 2, saturation: 1, routeRate: 100, routeSeconds: 2,
    shapes: '4x5', workMs: 20, wfRounds: 1, mapItems: 200, mapConcurrency: 20, memTasks: 300, agents: 20, seconds: 2, durJobs: 500, durRounds: 1, kills: 1, killAfterMs: 300,
    clusterJobs: 600, clusterRounds: 1, clusterPools: 3, clusterAgents: 3, clusterProducers: 1,
    dashboards: 2, dashRuns: 2, dashNodes: 500, dashSeconds: 1, dashRate: 50, dashOpen: 1,
    flowSchedules: 200, flowIdleSeconds: 2, flowRate: 20, flowRateSeconds: 3, flowFairA: 1000, flowFairB: 20, flowLimitTasks: 500, durableRuns: 200, durableIdleS: 2, durableSpreadS: 3, webhookRate: 20, webhookDownS: 3, leaseRate: 100, leaseSeconds: 1, latencyRate: 100, latencySeconds: 1,
  });
}
const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`;
const progress = (msg: string) => process.stderr.write(`[bench] ${msg}
`);

const runners: Record<Scenario, (o: BenchOptions & FlowBenchOptions & DurableBenchOptions & HttpWorkerBenchOptions & PeersBenchOptions & LatencyBenchOptions, p: Progress) => Promise<Report>> = {
  throughput: throughputScenario,
  seed: seedScenario,
  routing: routingScenario,
  workflow: workflowScenario,
  memory: memoryScenario,
  registry: registryScenario,
  durability: durabilityScenario,
  cluster: clusterScenario,
  dashboard: dashboardScenario,
  flow: flowScenario,
  'workflow-durable': workflowDurableScenario,
  tracing: tracingScenario,
  'http-worker': httpWorkerScenario,
  peers: peersScenario,
  latency: latencyScenario,
};
const outDir = opts.smoke ? new URL('../test-output/bench-smoke/', import.meta.url) : new URL('./', import.meta.url);
mkdirSync(outDir, { recursive: true });
const resultsUrl = new URL('results.json', outDir);
const stored: Partial<Record<Scenario, Section>> = existsSync(resultsUrl) && !opts.smoke ? JSON.parse(readFileSync(resultsUrl, 'utf8')) : {};
for (const name of scenario === 'all' ? SCENARIOS : [scenario as Scenario]) {
  const section: Section = { ...(await runners[name](opts, progress)), date: new Date().toISOString(), machine };
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
