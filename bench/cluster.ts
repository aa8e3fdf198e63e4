/**
 * Switchyard on a Redis Cluster: end-to-end throughput of no-op tasks with 1 master against 3
 * masters (any list: --cluster-shards), in one run. Each cluster is started fresh on loopback;
 * several pools of one agent type spread the queues over the masters' slots, agents and producers
 * run as separate processes, and the CPU of every redis-server and Node process is measured over
 * each round, so the report can say which side saturated.
 *
 * This file is also the producer process (`node --import tsx bench/cluster.ts` with
 * BENCH_CLUSTER_ROLE=producer): a TaskProducer with its live fleet snapshot, driven over IPC.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { echo } from '../queues/echo.ts';
import { startAgent, stop } from './processes.ts';
import { startProducer } from './producer.ts';
import { redisCpuSeconds, totalCommands } from './redis-stats.ts';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';
import { createRedis, waitForReady, clusterUrl, queueName, startLocalCluster, type RedisConnection, type LocalCluster } from '../src/index.ts';

/** The cluster scenario's own options (bench/run.ts declares them, with these defaults). */
export interface ClusterBenchOptions {
  clusterJobs: number;
  clusterRounds: number;
  /** Master counts to measure, in order, e.g. "1,3". */
  clusterShards: string;
  clusterPools: number;
  clusterAgents: number;
  clusterProducers: number;
  clusterConcurrency: number;
  clusterAppendfsync: 'always' | 'everysec' | 'no';
}

export const CLUSTER_DEFAULTS: ClusterBenchOptions = {
  clusterJobs: 20_000,
  clusterRounds: 3,
  clusterShards: '1,3',
  clusterPools: 6,
  clusterAgents: 6,
  clusterProducers: 2,
  clusterConcurrency: 50,
  clusterAppendfsync: 'always',
};

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const TYPE = echo.name;
const CHUNK = 1000;
const SLOTS = 16_384;

const waitKey = (prefix: string, pool: string) => `${prefix}:${queueName({ type: TYPE, pool })}:wait`;
const completedKey = (prefix: string, pool: string) => `${prefix}:${queueName({ type: TYPE, pool })}:completed`;

// ---------------------------------------------------------------------------------------------
// The producer process.

type ToProducer = { kind: 'run'; jobs: number; offset: number } | { kind: 'close' };
type FromProducer =
  | { kind: 'ready' }
  | { kind: 'done'; at: number; perPool: Record<string, number> }
  | { kind: 'error'; message: string };

async function producerProcess(): Promise<void> {
  const send = (m: FromProducer) => process.send?.(m);
  try {
    const url = process.env.REDIS_URL!;
    const prefix = process.env.SWITCHYARD_PREFIX!;
    const pools = process.env.BENCH_POOLS!.split(',');
    const sys = await startProducer(url, prefix, [echo], { SWITCHYARD_KEEP_COMPLETED_COUNT: '1000000' });
    // Ready once the snapshot routes over every pool (each has a HEALTHY agent).
    for (let i = 0; ; i++) {
      await sys.snapshot.refresh();
      if (sys.router.route({ type: TYPE }).candidates.length >= pools.length) break;
      if (i > 300) throw new Error(`the producer's snapshot sees fewer than ${pools.length} eligible pools after 30 s`);
      await sleep(100);
    }
    let closing = false;
    const close = async () => {
      if (closing) return;
      closing = true;
      await sys.close().catch(() => undefined);
      process.exit(0);
    };
    process.on('disconnect', () => void close());
    process.on('SIGTERM', () => void close());
    process.on('message', (m: ToProducer) => {
      if (m.kind === 'close') return void close();
      void (async () => {
        const perPool: Record<string, number> = {};
        for (let i = 0; i < m.jobs; i += CHUNK) {
          const n = Math.min(CHUNK, m.jobs - i);
          // Pinned, round-robin over the pools: an even split over the masters whatever the agents' health.
          const results = await sys.producer.enqueueBatch(Array.from({ length: n }, (_, k) => ({ type: TYPE, payload: { i: m.offset + i + k }, pool: pools[(m.offset + i + k) % pools.length]! })));
          for (const r of results) perPool[r.task.pool] = (perPool[r.task.pool] ?? 0) + 1;
        }
        send({ kind: 'done', at: Date.now(), perPool });
      })().catch((err: unknown) => send({ kind: 'error', message: err instanceof Error ? err.message : String(err) }));
    });
    send({ kind: 'ready' });
  } catch (err) {
    send({ kind: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) });
    process.exit(1);
  }
}

if (process.env.BENCH_CLUSTER_ROLE === 'producer' && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await producerProcess();
}

// ---------------------------------------------------------------------------------------------
// Processes of the run, and their cleanup even on failure.

/** Everything started, killed outright if the bench process exits or is interrupted. */
class Tracked {
  readonly children = new Set<ChildProcess>();
  readonly clusters = new Set<LocalCluster>();
  /** The clusters' data directories (AOF files), removed once their servers are gone. */
  readonly dirs = new Set<string>();

  add<T extends ChildProcess>(child: T): T {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Synchronous last resort (process 'exit', a signal): SIGKILL whatever is still running. */
  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const cluster of this.clusters) for (const s of cluster.servers) s.process.kill('SIGKILL');
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

function childEnv(url: string, prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: url,
    SWITCHYARD_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    // Agents stop by themselves if this process dies (src/cli/signals.ts).
    SWITCHYARD_SUPERVISOR_PID: String(process.pid),
    ...extra,
  };
  delete env.REDIS_CLUSTER_NODES; // REDIS_URL names the cluster; both set is a config error
  return env;
}

interface ProducerProcess {
  child: ChildProcess;
  run(jobs: number, offset: number): Promise<{ at: number; perPool: Record<string, number> }>;
  close(): Promise<void>;
}

async function startProducerProcess(t: Tracked, url: string, prefix: string, pools: readonly string[]): Promise<ProducerProcess> {
  const child = t.add(
    spawn(process.execPath, ['--import', 'tsx', SELF], {
      cwd: ROOT,
      env: childEnv(url, prefix, { BENCH_CLUSTER_ROLE: 'producer', BENCH_POOLS: pools.join(',') }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const next = () =>
    new Promise<FromProducer>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`producer process exited (${code}) unexpectedly`));
      child.once('exit', onExit);
      child.once('message', (m: FromProducer) => {
        child.off('exit', onExit);
        if (m.kind === 'error') reject(new Error(`producer process: ${m.message}`));
        else resolve(m);
      });
    });
  const ready = await next();
  if (ready.kind !== 'ready') throw new Error(`producer process: expected ready, got ${ready.kind}`);
  return {
    child,
    async run(jobs, offset) {
      const reply = next();
      child.send({ kind: 'run', jobs, offset } satisfies ToProducer);
      const m = await reply;
      if (m.kind !== 'done') throw new Error(`producer process: expected done, got ${m.kind}`);
      return m;
    },
    async close() {
      if (child.connected) child.send({ kind: 'close' } satisfies ToProducer);
      await stop(child);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Clusters.

/** Master of every slot range, from CLUSTER SLOTS: `host:port` of each. */
async function slotMap(node: Redis): Promise<Array<{ from: number; to: number; master: string }>> {
  const reply = (await node.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
  return reply.map(([from, to, [host, port]]) => ({ from, to, master: `${host}:${port}` })).sort((a, b) => a.from - b.from);
}

/**
 * Pool names whose queues' slots spread evenly over the masters of every measured cluster size
 * (startLocalCluster gives master i of n the i-th n-th of the slots): p1, p2, ... kept
 * when it does not overfill its part for any size.
 */
export function balancedPools(count: number, sizes: readonly number[], prefix = 'x'): string[] {
  const chosen: string[] = [];
  const fill = new Map<string, number>();
  for (let k = 1; chosen.length < count; k++) {
    const pool = `p${k}`;
    const slot = calculateSlot(waitKey(prefix, pool));
    const parts = sizes.map((n) => `${n}:${Math.floor((slot * n) / SLOTS)}`);
    const fits = k > 10_000 || sizes.every((n, i) => (fill.get(parts[i]!) ?? 0) < Math.ceil(count / n));
    if (!fits) continue;
    chosen.push(pool);
    for (const p of parts) fill.set(p, (fill.get(p) ?? 0) + 1);
  }
  return chosen;
}

// ---------------------------------------------------------------------------------------------
// CPU.

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat after the command name (field 3, the state, first); undefined once it is gone. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A process's parent, from /proc; undefined when /proc does not show the process (gone, or another host's). */
export function parentPid(pid: number): number | undefined {
  const f = procStat(pid);
  return f ? Number(f[1]) : undefined;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; NaN once it is gone. */
export function procCpuSeconds(pid: number | undefined): number {
  const f = pid === undefined ? undefined : procStat(pid);
  return f ? (Number(f[11]) + Number(f[12])) / CLK_TCK : NaN; // fields 14 and 15: utime, stime
}

/**
 * CPU seconds of a server that runs in a process per connection (PostgreSQL's postmaster): its own,
 * its children's that it has reaped, and its live children's; NaN when /proc does not show it.
 */
export function processTreeCpuSeconds(pid: number): number {
  const f = procStat(pid);
  if (!f) return NaN;
  let sum = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK; // utime, stime, cutime, cstime
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = procStat(Number(entry));
    if (child && Number(child[1]) === pid) sum += (Number(child[11]) + Number(child[12])) / CLK_TCK; // field 4: ppid
  }
  return sum;
}

/** The machine's CPU time so far, in ticks, from the first line of /proc/stat (steal counts as busy). */
function machineTicks(): { busy: number; idle: number; iowait: number } {
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: user + nice + system + irq + softirq + steal, idle, iowait };
}

/**
 * Seconds a process's main thread has spent on a CPU and runnable but waiting for one, from
 * /proc/<pid>/task/<pid>/schedstat; NaN once it is gone. The main thread is redis-server's command
 * thread (which also fsyncs the AOF under appendfsync always) and a Node process's event loop.
 */
function threadSched(pid: number | undefined): { run: number; wait: number } {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { run: run! / 1e9, wait: wait! / 1e9 };
  } catch {
    return { run: NaN, wait: NaN };
  }
}

/** True while a process's main thread is in uninterruptible (disk) sleep: for redis-server, an fsync. */
function inDiskWait(pid: number | undefined): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] === 'D';
  } catch {
    return false;
  }
}

/** CPU seconds so far of one cluster's processes, and its masters' command count. */
interface RigCpu {
  redis: number[];
  commands: number;
  agents: number[];
  producers: number[];
  /** Main threads: each master's, then each agent's and producer's. */
  masterThreads: Array<{ run: number; wait: number }>;
  nodeThreads: Array<{ run: number; wait: number }>;
}

interface CpuMark {
  at: number;
  rigs: RigCpu[];
  self: NodeJS.CpuUsage;
  machine: ReturnType<typeof machineTicks>;
}

/** CPU over a measured round, in cores (CPU seconds per wall second). */
export interface CpuUse {
  wallS: number;
  /** Each master's redis-server (INFO cpu: used_cpu_user + used_cpu_sys). */
  redis: number[];
  agents: number[];
  producers: number[];
  /** Redis commands run, all masters. */
  commands: number;
  /** The other clusters' redis-servers, agents and producers, idle meanwhile (heartbeats, snapshot refreshes). */
  idle: number;
  /** This process (it only polls for completions). */
  bench: number;
  machineBusy: number;
  machineIowait: number;
  /**
   * Each master's command thread, as shares of the round: on a CPU, runnable but waiting for a CPU,
   * and in disk sleep (sampled every 10 ms: fsync). The rest it waited for clients.
   */
  masterThreads: Array<{ cpu: number; wait: number; disk: number }>;
  /** Node main threads (agents and producers), mean shares: on a CPU, waiting for a CPU. */
  nodeThreads: { cpu: number; wait: number };
}

async function mark(rigs: readonly Rig[]): Promise<CpuMark> {
  return { at: performance.now(), rigs: await Promise.all(rigs.map((r) => r.cpu())), self: process.cpuUsage(), machine: machineTicks() };
}

function cpuBetween(a: CpuMark, b: CpuMark, active: number, ncpu: number, disk: number[]): CpuUse {
  const wallS = (b.at - a.at) / 1000;
  const d = (x: number[], y: number[]) => y.map((v, i) => (v - x[i]!) / wallS);
  const [from, to] = [a.rigs[active]!, b.rigs[active]!];
  const idle = a.rigs.reduce((acc, r, i) => (i === active ? acc : acc + sum(d(r.redis, b.rigs[i]!.redis)) + sum(d(r.agents, b.rigs[i]!.agents)) + sum(d(r.producers, b.rigs[i]!.producers))), 0);
  const self = process.cpuUsage(a.self);
  const busy = b.machine.busy - a.machine.busy;
  const total = busy + (b.machine.idle - a.machine.idle) + (b.machine.iowait - a.machine.iowait);
  return {
    wallS,
    redis: d(from.redis, to.redis),
    agents: d(from.agents, to.agents),
    producers: d(from.producers, to.producers),
    // Less the marks' own INFO calls counted in between: `a`'s INFO commandstats and `b`'s INFO cpu, on each master.
    commands: to.commands - from.commands - 2 * from.redis.length,
    idle,
    bench: (self.user + self.system) / 1e6 / wallS,
    machineBusy: total > 0 ? (busy / total) * ncpu : NaN,
    machineIowait: total > 0 ? ((b.machine.iowait - a.machine.iowait) / total) * ncpu : NaN,
    masterThreads: to.masterThreads.map((t, i) => ({ cpu: (t.run - from.masterThreads[i]!.run) / wallS, wait: (t.wait - from.masterThreads[i]!.wait) / wallS, disk: disk[i] ?? NaN })),
    nodeThreads: {
      cpu: mean(to.nodeThreads.map((t, i) => (t.run - from.nodeThreads[i]!.run) / wallS)),
      wait: mean(to.nodeThreads.map((t, i) => (t.wait - from.nodeThreads[i]!.wait) / wallS)),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One cluster with its agents and producers.

export interface ClusterRound {
  jobs: number;
  /** First add to the last completion (the latest finishedOn of the pools' completed sets). */
  endToEndMs: number;
  /** First add to the last producer's last acknowledged batch. */
  enqueueMs: number;
  tasksPerSec: number;
  enqueuePerSec: number;
  perPool: Record<string, number>;
  cpu: CpuUse;
}

export interface ShardResult {
  masters: number;
  redisVersion: string;
  /** Slot ranges of each master, m1 first. */
  ranges: Array<{ master: string; slots: string }>;
  pools: Array<{ pool: string; slot: number; master: number }>;
  rounds: ClusterRound[];
}

interface Setup {
  jobs: number;
  rounds: number;
  pools: string[];
  agents: number;
  producers: number;
  concurrency: number;
  appendfsync: ClusterBenchOptions['clusterAppendfsync'];
  ncpu: number;
}

class Rig {
  readonly prefix: string;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-cluster-'));
  cluster: LocalCluster | undefined;
  readonly nodeConns: Redis[] = [];
  admin: RedisConnection | undefined;
  readonly agents: ChildProcess[] = [];
  readonly producers: ProducerProcess[] = [];
  redisVersion = '?';
  ranges: ShardResult['ranges'] = [];
  pools: ShardResult['pools'] = [];
  #offset = 0;

  constructor(
    readonly masters: number,
    readonly s: Setup,
    readonly t: Tracked,
  ) {
    this.prefix = `bench-cluster-${process.pid}-${masters}`;
    t.dirs.add(this.dataDir);
  }

  get label(): string {
    return `${this.masters} master${this.masters === 1 ? '' : 's'}`;
  }

  async start(progress: Progress): Promise<void> {
    const { s, t } = this;
    const started = performance.now();
    this.cluster = await startLocalCluster({ masters: this.masters, dataDir: this.dataDir });
    const cluster = this.cluster;
    t.clusters.add(cluster);
    for (const hp of cluster.nodes) {
      const [host, port] = hp.split(':');
      this.nodeConns.push(new Redis({ host: host!, port: Number(port) }));
    }
    if (s.appendfsync !== 'always') await Promise.all(this.nodeConns.map((c) => c.config('SET', 'appendfsync', s.appendfsync)));
    this.redisVersion = /redis_version:(\S+)/.exec(await this.nodeConns[0]!.info('server'))?.[1] ?? '?';
    const url = clusterUrl(cluster.nodes);
    this.admin = createRedis(url, 'client');
    await waitForReady(this.admin, 10_000);

    const map = await slotMap(this.nodeConns[0]!);
    this.ranges = cluster.nodes.slice(0, this.masters).map((node) => ({
      master: node,
      slots: map.filter((r) => r.master === node).map((r) => `${r.from}–${r.to}`).join(', '),
    }));
    this.pools = s.pools.map((pool) => {
      const slot = calculateSlot(waitKey(this.prefix, pool));
      const owner = map.find((r) => slot >= r.from && slot <= r.to)?.master ?? '?';
      return { pool, slot, master: cluster.nodes.indexOf(owner) };
    });
    progress(`cluster, ${this.label}: up in ${fmt(performance.now() - started)} ms; ${this.ranges.map((r, i) => `m${i + 1} ${r.master} slots ${r.slots}`).join('; ')}`);
    progress(`cluster, ${this.label}: ${this.pools.map((p) => `${queueName({ type: TYPE, pool: p.pool })} slot ${p.slot} → m${p.master + 1}`).join(', ')}`);

    const t0 = performance.now();
    const admin = this.admin;
    this.agents.push(...(await Promise.all(Array.from({ length: s.agents }, (_, i) => startAgent({ redisUrl: url, prefix: this.prefix, type: TYPE, pool: s.pools[i % s.pools.length]!, concurrency: s.concurrency, env: { SWITCHYARD_SUPERVISOR_PID: String(process.pid) } }).then((c) => t.add(c))))));
    this.producers.push(...(await Promise.all(Array.from({ length: s.producers }, () => startProducerProcess(t, url, this.prefix, s.pools)))));
    progress(`cluster, ${this.label}: ${s.agents} agents × ${s.concurrency} and ${s.producers} producer process${s.producers === 1 ? '' : 'es'} ready in ${fmt(performance.now() - t0)} ms`);
  }

  async cpu(): Promise<RigCpu> {
    const masters = this.nodeConns.slice(0, this.masters);
    const [redis, commands] = await Promise.all([Promise.all(masters.map((m) => redisCpuSeconds(m))), Promise.all(masters.map((m) => totalCommands(m)))]);
    return {
      redis,
      commands: sum(commands),
      agents: this.agents.map((c) => procCpuSeconds(c.pid)),
      producers: this.producers.map((p) => procCpuSeconds(p.child.pid)),
      masterThreads: this.masterPids().map(threadSched),
      nodeThreads: [...this.agents.map((c) => c.pid), ...this.producers.map((p) => p.child.pid)].map(threadSched),
    };
  }

  masterPids(): Array<number | undefined> {
    return this.cluster!.servers.slice(0, this.masters).map((s) => s.process.pid);
  }

  /** One round: `jobs` tasks added by the producers while the agents run, until the last completes. */
  async round(jobs: number, rigs: readonly Rig[]): Promise<ClusterRound> {
    const { s } = this;
    const admin = this.admin!;
    const c0 = await completedCount(admin, this.prefix, s.pools);
    const before = await mark(rigs);
    // How often each master's command thread is in disk sleep (an fsync), sampled.
    const pids = this.masterPids();
    const diskSamples = pids.map(() => 0);
    let samples = 0;
    const sampler = setInterval(() => {
      samples++;
      pids.forEach((pid, i) => void (inDiskWait(pid) && diskSamples[i]!++));
    }, 10);
    const start = Date.now();
    const shares = Array.from({ length: s.producers }, (_, i) => Math.floor(jobs / s.producers) + (i < jobs % s.producers ? 1 : 0));
    let failed: unknown;
    const adds = Promise.all(shares.map((n, i) => this.producers[i]!.run(n, this.#offset + sum(shares.slice(0, i)))));
    adds.catch((err: unknown) => (failed = err));
    this.#offset += jobs;
    const deadline = start + Math.max(60_000, jobs * 5);
    for (let done = 0; done < jobs; done = (await completedCount(admin, this.prefix, s.pools)) - c0) {
      if (failed) throw failed;
      if (Date.now() > deadline) throw new Error(`cluster, ${this.label}: ${done} of ${jobs} tasks completed after ${fmt((Date.now() - start) / 1000)} s`);
      await sleep(20);
    }
    clearInterval(sampler);
    const after = await mark(rigs);
    const added = await adds;
    const end = await lastFinished(admin, this.prefix, s.pools);
    const perPool: Record<string, number> = {};
    for (const a of added) for (const [pool, n] of Object.entries(a.perPool)) perPool[pool] = (perPool[pool] ?? 0) + n;
    const enqueueMs = Math.max(...added.map((a) => a.at)) - start;
    const endToEndMs = Math.max(end - start, 1);
    return { jobs, endToEndMs, enqueueMs, tasksPerSec: (jobs / endToEndMs) * 1000, enqueuePerSec: (jobs / enqueueMs) * 1000, perPool, cpu: cpuBetween(before, after, rigs.indexOf(this), s.ncpu, diskSamples.map((n) => n / Math.max(samples, 1))) };
  }

  /** Stops everything it started, whatever state it got to. */
  async close(): Promise<void> {
    await Promise.all(this.producers.map((p) => p.close().catch(() => undefined)));
    await Promise.all(this.agents.map((a) => stop(a)));
    this.admin?.disconnect();
    for (const c of this.nodeConns) c.disconnect();
    if (this.cluster) {
      await this.cluster.stop();
      this.t.clusters.delete(this.cluster);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    this.t.dirs.delete(this.dataDir);
  }
}

async function completedCount(admin: RedisConnection, prefix: string, pools: readonly string[]): Promise<number> {
  const counts = await Promise.all(pools.map((p) => admin.zcard(completedKey(prefix, p))));
  return sum(counts);
}

async function lastFinished(admin: RedisConnection, prefix: string, pools: readonly string[]): Promise<number> {
  const tops = await Promise.all(pools.map((p) => admin.zrange(completedKey(prefix, p), '-1', '-1', 'WITHSCORES')));
  return Math.max(...tops.map((t) => Number(t[1] ?? 0)));
}

// ---------------------------------------------------------------------------------------------
// The scenario.

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: readonly number[]) => (xs.length ? sum(xs) / xs.length : NaN);
const max = (xs: readonly number[]) => Math.max(...xs);
const pctCore = (x: number) => `${fmt(x * 100)} %`;

/** Medians over the rounds of one cluster size, in the units the report uses. */
function summarize(r: ShardResult, pools: readonly string[]) {
  const m = (f: (x: ClusterRound) => number) => median(r.rounds.map(f));
  const perIndex = (f: (c: CpuUse) => number[]) => f(r.rounds[0]!.cpu).map((_, i) => median(r.rounds.map((x) => f(x.cpu)[i]!)));
  const redis = perIndex((c) => c.redis);
  const agents = perIndex((c) => c.agents);
  const producers = perIndex((c) => c.producers);
  const jobs = r.rounds[0]!.jobs;
  const wallS = m((x) => x.cpu.wallS);
  const bench = m((x) => x.cpu.bench);
  const node = sum(agents) + sum(producers) + bench;
  const idle = m((x) => x.cpu.idle);
  const machineBusy = m((x) => x.cpu.machineBusy);
  const tasksOf = (master: number) => sum(pools.filter((p) => r.pools.find((q) => q.pool === p)!.master === master).map((p) => sum(r.rounds.map((x) => x.perPool[p] ?? 0))));
  const masterThreads = r.rounds[0]!.cpu.masterThreads.map((_, i) => ({
    cpu: m((x) => x.cpu.masterThreads[i]!.cpu),
    wait: m((x) => x.cpu.masterThreads[i]!.wait),
    disk: m((x) => x.cpu.masterThreads[i]!.disk),
  }));
  return {
    masters: r.masters,
    tasksPerSec: m((x) => x.tasksPerSec),
    min: Math.min(...r.rounds.map((x) => x.tasksPerSec)),
    max: Math.max(...r.rounds.map((x) => x.tasksPerSec)),
    enqueuePerSec: m((x) => x.enqueuePerSec),
    perMaster: Array.from({ length: r.masters }, (_, i) => tasksOf(i) / r.rounds.length),
    parked: sum(r.rounds.map((x) => x.perPool._parked ?? 0)),
    redis,
    redisTotal: sum(redis),
    masterThreads,
    /** Share of the time each master's command thread was not waiting for clients. */
    masterBusy: masterThreads.map((t) => t.cpu + t.wait + t.disk),
    agents,
    producers,
    nodeThreads: { cpu: m((x) => x.cpu.nodeThreads.cpu), wait: m((x) => x.cpu.nodeThreads.wait) },
    bench,
    node,
    idle,
    machineBusy,
    machineIowait: m((x) => x.cpu.machineIowait),
    /** Whatever else ran on the machine meanwhile (not this benchmark). */
    other: Math.max(0, machineBusy - node - sum(redis) - idle),
    // CPU per task: cores × seconds of the round / tasks.
    redisUsPerTask: (sum(redis) * wallS * 1e6) / jobs,
    nodeUsPerTask: (node * wallS * 1e6) / jobs,
    commandsPerTask: m((x) => x.cpu.commands) / jobs,
  };
}
type Summary = ReturnType<typeof summarize>;

type Limit = 'redis-cpu' | 'fsync' | 'machine' | 'node-process' | 'none';

/** What limited one run, from its CPU and thread figures. */
function limitOf(x: Summary, ncpu: number, appendfsync: string): { kind: Limit; text: string } {
  const i = x.masterBusy.indexOf(max(x.masterBusy));
  const t = x.masterThreads[i]!;
  const thread = `master m${i + 1}'s command thread was busy ${pctCore(x.masterBusy[i]!)} of the time (on a CPU ${pctCore(t.cpu)}, waiting for one ${pctCore(t.wait)}, in fsync ${pctCore(t.disk)})`;
  const procs = [...x.agents.map((c, k) => ({ c, label: `agent process ${k + 1}` })), ...x.producers.map((c, k) => ({ c, label: `producer process ${k + 1}` }))].sort((a, b) => b.c - a.c);
  const cores = `the machine's ${ncpu} cores were saturated (${fmt(x.machineBusy, 2)} busy: Node ${fmt(x.node, 2)}, Redis ${fmt(x.redisTotal, 2)}, the idle cluster ${fmt(x.idle, 2)}, other processes ${fmt(x.other, 2)}; Node main threads waited for a CPU ${pctCore(x.nodeThreads.wait)} of the time)`;
  if (x.masterBusy[i]! >= 0.85) {
    if (t.wait >= t.cpu && t.wait >= t.disk) return { kind: 'machine', text: `${thread}, mostly waiting for a CPU: ${cores}` };
    if (t.disk >= t.cpu) return { kind: 'fsync', text: `${thread}, mostly in fsync (appendfsync ${appendfsync}): that master's disk waits were the limit` };
    const starved = t.wait >= 0.2 ? ` (slowed by the ${pctCore(t.wait)} it waited for a CPU: with a core of its own it would carry more)` : '';
    return { kind: 'redis-cpu', text: `${thread}, mostly on a CPU: that master's one thread was the limit${starved}` };
  }
  if (x.machineBusy >= 0.9 * ncpu) return { kind: 'machine', text: `${cores}, while ${thread}` };
  if (procs[0] && procs[0].c >= 0.9) return { kind: 'node-process', text: `${procs[0].label} was saturated at ${pctCore(procs[0].c)} of a core, while ${thread}` };
  return { kind: 'none', text: `nothing measured was saturated (the machine at ${fmt(x.machineBusy, 2)} of ${ncpu} cores; ${thread}): the load offered (agents × concurrency, producers adding one batch at a time) did not fill it` };
}

/** Where scaling stops and why, from the figures of each cluster size. */
function verdict(xs: Summary[], ncpu: number, appendfsync: string): string {
  const first = xs[0]!;
  const last = xs.at(-1)!;
  const masters = (n: number) => `${n} master${n === 1 ? '' : 's'}`;
  const ours = (x: Summary) => x.node + x.redisTotal;
  const cost = (x: Summary) => x.nodeUsPerTask + x.redisUsPerTask;
  const out: string[] = [];
  if (xs.length > 1) {
    const ratio = last.tasksPerSec / first.tasksPerSec;
    const ideal = last.masters / first.masters;
    // tasks/s = cores used / CPU per task, so the ratio is the product of these two.
    out.push(
      `That ratio is, to within the measurement, the CPU the benchmark's processes got, ${fmt(ours(first), 2)} → ${fmt(ours(last), 2)} cores (${(ours(last) / ours(first)).toFixed(2)}×), times the inverse of their CPU per task, ${fmt(cost(first))} → ${fmt(cost(last))} µs (${(cost(first) / cost(last)).toFixed(2)}×)` +
        (ratio > ideal * 1.1 ? `; it is above the ideal, which only unequal conditions between the runs can produce.` : '.'),
    );
  }
  const limits = xs.map((x) => limitOf(x, ncpu, appendfsync));
  xs.forEach((x, i) => out.push(`With ${masters(x.masters)}, ${limits[i]!.text}.`));
  const [lf, ll] = [limits[0]!, limits.at(-1)!];
  // What one master's thread carries (linear in the share of time it is busy), and what the cores carry (Node and Redis both need them).
  const perMaster = first.tasksPerSec / first.masters / Math.max(max(first.masterBusy), 1e-6);
  const machineCap = (ncpu * 1e6) / cost(last);
  const capacities =
    `one master's command thread carries about ${fmt(perMaster)} tasks/s of this workload (${fmt(first.tasksPerSec / first.masters)} tasks/s with it busy ${pctCore(max(first.masterBusy))} of the time), ` +
    `the ${ncpu} cores about ${fmt(machineCap)} however many masters there are (${fmt(last.nodeUsPerTask)} µs of Node CPU and ${fmt(last.redisUsPerTask)} µs of Redis CPU per task)`;
  const what = (k: Limit) => (k === 'machine' ? `the ${ncpu} cores` : k === 'node-process' ? 'a Node process' : k === 'fsync' ? 'fsync' : k === 'redis-cpu' ? "a master's CPU" : 'nothing measured');
  if (lf.kind === 'redis-cpu' || lf.kind === 'fsync') {
    out.push(
      ll.kind === 'redis-cpu' || ll.kind === 'fsync'
        ? `Redis was the limit throughout, so scaling had not stopped at ${masters(last.masters)}: ${capacities}.`
        : `So masters paid off while a master was the limit, and at ${masters(last.masters)} the limit had moved to ${what(ll.kind)}: on this machine scaling stops at about ${masters(Math.max(1, Math.ceil(machineCap / perMaster)))}, where ${capacities}.`,
    );
  } else if (lf.kind === 'machine' || lf.kind === 'node-process') {
    out.push(
      `So scaling stops at ${masters(first.masters)} on this machine: ${what(lf.kind)} ran out while the master${first.masters === 1 ? ' had' : 's had'} headroom, and more masters change throughput only through the two factors above, not through Redis capacity: ${capacities}. ` +
        `Feeding one master that much takes about ${fmt((perMaster * last.nodeUsPerTask) / 1e6, 1)} cores of agents and producers: a second master pays off only with more cores than that for the Node side.`,
    );
  } else {
    out.push(`Neither Redis nor the cores were saturated at ${masters(first.masters)}, so this run does not show where scaling stops: ${capacities}.`);
  }
  return out.join(' ');
}

function clusterOptions(o: BenchOptions): ClusterBenchOptions {
  const given = o as BenchOptions & Partial<ClusterBenchOptions>;
  const c: ClusterBenchOptions = { ...CLUSTER_DEFAULTS };
  for (const k of Object.keys(CLUSTER_DEFAULTS) as Array<keyof ClusterBenchOptions>) if (given[k] !== undefined) Object.assign(c, { [k]: given[k] });
  return c;
}

/** The `cluster` scenario of `npm run bench`, measured and described. */
export async function clusterScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const o = clusterOptions(opts);
  const sizes = o.clusterShards.split(',').map((x) => Number(x.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 16)) throw new Error(`--cluster-shards ${o.clusterShards}: a list of master counts, 1 to 16, e.g. 1,3`);
  if (o.clusterAgents < o.clusterPools) throw new Error(`--cluster-agents ${o.clusterAgents} < --cluster-pools ${o.clusterPools}: every pool needs an agent`);
  if (!['always', 'everysec', 'no'].includes(o.clusterAppendfsync)) throw new Error(`--cluster-appendfsync ${o.clusterAppendfsync}: always, everysec or no`);
  const ncpu = cpus().length;
  const setup: Setup = {
    jobs: o.clusterJobs, rounds: o.clusterRounds, pools: balancedPools(o.clusterPools, sizes),
    agents: o.clusterAgents, producers: o.clusterProducers, concurrency: o.clusterConcurrency, appendfsync: o.clusterAppendfsync, ncpu,
  };
  const t = new Tracked();
  const kill = () => t.killAll();
  const interrupted = (signal: NodeJS.Signals) => {
    t.killAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', kill);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const rigs: Rig[] = [];
  const rounds = new Map<Rig, ClusterRound[]>();
  try {
    // Every cluster stays up, so that their rounds can alternate: whatever else the machine does
    // meanwhile falls on all sizes alike.
    for (const n of sizes) {
      const rig = new Rig(n, setup, t);
      rigs.push(rig);
      rounds.set(rig, []);
      await rig.start(progress);
    }
    // A warm-up round on each (JITs, connections, slot caches), not counted.
    for (const rig of rigs) await rig.round(Math.min(setup.jobs, 2000), rigs);
    for (let r = 1; r <= setup.rounds; r++) {
      for (const rig of r % 2 === 1 ? rigs : [...rigs].reverse()) {
        const x = await rig.round(setup.jobs, rigs);
        rounds.get(rig)!.push(x);
        const c = x.cpu;
        progress(
          `cluster, ${rig.label}, round ${r}/${setup.rounds}: ${fmt(x.tasksPerSec)} tasks/s end to end (adds done at ${fmt(x.enqueueMs)} ms, last completion at ${fmt(x.endToEndMs)} ms); ` +
            `cores: masters ${c.redis.map((v) => fmt(v, 2)).join('/')}, agents ${fmt(sum(c.agents), 2)}, producers ${fmt(sum(c.producers), 2)}, idle cluster ${fmt(c.idle, 2)}, machine ${fmt(c.machineBusy, 2)} of ${ncpu}`,
        );
      }
    }
  } finally {
    for (const rig of rigs) await rig.close().catch((err: unknown) => progress(`cluster, ${rig.label}: cleanup failed: ${String(err)}`));
    for (const c of t.children) await stop(c); // anything that failed half-way through starting
    process.off('exit', kill);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }

  const results: ShardResult[] = rigs.map((rig) => ({ masters: rig.masters, redisVersion: rig.redisVersion, ranges: rig.ranges, pools: rig.pools, rounds: rounds.get(rig)! }));
  const xs = results.map((r) => summarize(r, setup.pools));
  const first = xs[0]!;
  const last = xs.at(-1)!;
  const ratio = last.tasksPerSec / first.tasksPerSec;
  const head = xs.map((x) => `${x.masters} master${x.masters === 1 ? '' : 's'}`);
  const row = (label: string, f: (x: Summary) => string) => `| ${label} | ${xs.map(f).join(' | ')} |`;
  const list = (v: number[], f: (x: number) => string) => v.map(f).join(' / ');
  const noisy = xs.filter((x) => x.other > 0.1 * ncpu);
  const text = [
    `Each cluster is started fresh on loopback (redis-server ${results[0]!.redisVersion}, no replicas, AOF with appendfsync ${o.clusterAppendfsync}${o.clusterAppendfsync === 'always' ? ', as Switchyard spawns Redis' : ', set by CONFIG SET after start'}) by \`startLocalCluster\` (\`redis-cli --cluster create\` for 3 masters or more; fewer get their slots by hand, CLUSTER ADDSLOTSRANGE and CLUSTER MEET). Switchyard connects through \`redis+cluster://\` URLs (an ioredis Cluster per connection).`,
    '',
    `${setup.pools.length} pools of the no-op \`echo\` type, named so that their queues' hash tags spread evenly over the masters; ${o.clusterAgents} agent processes (\`switchyard agent echo --pool <pool> --concurrency ${o.clusterConcurrency}\`, ${fmt(o.clusterAgents / setup.pools.length, 1)} per pool); ${o.clusterProducers} producer process${o.clusterProducers === 1 ? '' : 'es'}, each a TaskProducer with its live fleet snapshot (bench/producer.ts) adding batches of ${fmt(CHUNK)} tasks, one batch at a time. Tasks are pinned to pools (the task option \`pool\`), round-robin, so each master gets the same share (row "tasks per master"); the router still checks every task's pool (a live agent, breaker closed). Unpinned, the type's weighted routing would halve the share of a pool whose agent turns DEGRADED (event-loop delay p99 over 200 ms), which agents starved of CPU here do, and the masters' loads would drift apart.`,
    '',
    `A round adds ${fmt(o.clusterJobs)} tasks with the agents running; end to end is from the first add to the last completion (the latest finishedOn in the pools' completed sets). All clusters stay up, each with its agents and producers, and their rounds alternate (${sizes.join(', ')}, then the reverse, ...), after a warm-up round on each; ${o.clusterRounds} round${o.clusterRounds === 1 ? '' : 's'} each, medians. CPU over each round: each master's redis-server from INFO cpu (used_cpu_user + used_cpu_sys), Node processes from /proc/<pid>/stat, the machine from /proc/stat, in cores (CPU seconds per second; ${ncpu} cores here, shared by everything). Main threads (a master's command thread, which also runs the AOF fsync under appendfsync always; a Node process's event loop) from /proc/<pid>/task/<pid>/schedstat: time on a CPU and time runnable but waiting for one; a master's time in fsync is the share of 10 ms samples that found its thread in disk sleep.`,
    '',
    `| pool queue | slot of \`<prefix>:<queue>:wait\` | ${head.join(' | ')} |`,
    `|---|---:|${xs.map(() => '---|').join('')}`,
    ...setup.pools.map((pool) => `| \`${queueName({ type: TYPE, pool })}\` | ${results[0]!.pools.find((p) => p.pool === pool)!.slot} | ${results.map((r) => `m${r.pools.find((p) => p.pool === pool)!.master + 1}`).join(' | ')} |`),
    '',
    `Slots: ${results.map((r) => `${r.masters} master${r.masters === 1 ? '' : 's'}: ${r.ranges.map((x, i) => `m${i + 1} ${x.slots}`).join(', ')}`).join('; ')}.`,
    '',
    `| figure | ${head.join(' | ')} |`,
    `|---|${xs.map(() => '---:|').join('')}`,
    row('end to end, tasks/s (median)', (x) => `**${fmt(x.tasksPerSec)}**`),
    row('end to end across rounds, tasks/s', (x) => `${fmt(x.min)}–${fmt(x.max)}`),
    row('adds, tasks/s (first add to last acknowledged batch, agents running)', (x) => fmt(x.enqueuePerSec)),
    row('tasks per master per round', (x) => list(x.perMaster, (v) => fmt(v))),
    row('Redis CPU per master, % of a core', (x) => list(x.redis, pctCore)),
    row('Redis CPU, all masters, cores', (x) => fmt(x.redisTotal, 2)),
    row('Redis CPU per task, µs (all masters)', (x) => fmt(x.redisUsPerTask, 1)),
    row('Redis commands per task (all masters)', (x) => fmt(x.commandsPerTask, 1)),
    row('agent processes, cores (sum; busiest process)', (x) => `${fmt(sum(x.agents), 2)} (${fmt(max(x.agents), 2)})`),
    row('producer processes, cores (sum; busiest process)', (x) => `${fmt(sum(x.producers), 2)} (${fmt(max(x.producers), 2)})`),
    row('bench process (polls for completions), cores', (x) => fmt(x.bench, 2)),
    row('Node CPU per task, µs (agents, producers, bench)', (x) => fmt(x.nodeUsPerTask, 1)),
    row('the other, idle cluster(s): servers, agents, producers, cores', (x) => fmt(x.idle, 2)),
    row(`machine: busy cores of ${ncpu} (I/O wait, cores)`, (x) => `${fmt(x.machineBusy, 2)} (${fmt(x.machineIowait, 2)})`),
    row('machine: other processes (not this benchmark), cores', (x) => fmt(x.other, 2)),
    row('master command threads: on a CPU / waiting for one / in fsync, % of the time', (x) => x.masterThreads.map((t) => `${fmt(t.cpu * 100)} / ${fmt(t.wait * 100)} / ${fmt(t.disk * 100)}`).join('; ')),
    row('Node main threads, mean: on a CPU / waiting for one, % of the time', (x) => `${fmt(x.nodeThreads.cpu * 100)} / ${fmt(x.nodeThreads.wait * 100)}`),
    '',
    `**Scaling: ${last.masters} masters / ${first.masters} master${first.masters === 1 ? '' : 's'} = ${ratio.toFixed(2)}×** (ideal ${fmt(last.masters / first.masters, 2)}×). ${verdict(xs, ncpu, o.clusterAppendfsync)}`,
    ...(noisy.length
      ? ['', `Caution: other processes used ${noisy.map((x) => `${fmt(x.other, 2)} cores during the ${x.masters}-master rounds`).join(' and ')} (median), over a tenth of the machine's CPU: the figures are skewed by whatever else was running; measure on a quiet machine.`]
      : []),
    ...(xs.some((x) => x.parked > 0) ? ['', `Warning: tasks were parked (no eligible pool): ${xs.map((x) => `${x.masters} master(s) ${fmt(x.parked)}`).join(', ')}.`] : []),
  ].join('\n');
  const summary = [
    summaryRow(`cluster: end-to-end tasks/s, ${first.masters} → ${last.masters} masters`, fmt(first.tasksPerSec), fmt(last.tasksPerSec), `${ratio.toFixed(2)}×`, '', undefined),
    summaryRow(`cluster: busiest master's CPU, % of a core, ${first.masters} → ${last.masters} masters`, pctCore(max(first.redis)), pctCore(max(last.redis)), '', '', undefined),
  ];
  const command = `npm run bench -- cluster --cluster-shards ${o.clusterShards} --cluster-jobs ${o.clusterJobs} --cluster-rounds ${o.clusterRounds} --cluster-pools ${o.clusterPools} --cluster-agents ${o.clusterAgents} --cluster-producers ${o.clusterProducers} --cluster-concurrency ${o.clusterConcurrency} --cluster-appendfsync ${o.clusterAppendfsync}`;
  return { title: `Redis Cluster: ${sizes.join(' vs ')} masters`, command, text, summary, data: { options: o, pools: setup.pools, results, summaries: xs } };
}
