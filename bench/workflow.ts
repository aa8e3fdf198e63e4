/**
 * Workflows: (1) makespan of a layered DAG with fixed work per node against its critical path
 * (layers × work): what the engine adds on the path from one node's end to its dependents' start;
 * (2) the engine's cost per node: the same no-op nodes run as a workflow and as plain tasks (Redis
 * commands, and CPU of this process, which holds the engine and producer as an API process would);
 * (3) validation time of a 10 000-node DAG, on a cold process and warm; (4) a map node: makespan of
 * its items with work against the ideal (items × work / concurrency), and Redis commands per item
 * with no work against a plain task's. Agents are real
 * `switchyard agent flaky` processes (flaky with latencyMs = the work), as in a deployment.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { buildWorkflowServices, Catalogue, createLogger, createRedis, loadConfig, queueName, validateWorkflow } from '../src/index.ts';
import demoTypes from '../queues/index.ts';
import { startAgent, startBareWorker, stop } from './processes.ts';
import { commandCalls, deletePrefix } from './redis-stats.ts';
import { fmt, median, summaryRow, type BenchOptions, type Progress, type Report } from './report.ts';

export interface DagShape {
  layers: number;
  width: number;
}

export interface WorkflowBenchOptions {
  redisUrl: string;
  /** Shapes whose makespan is measured; the first one is also run with no work for the cost per node. */
  shapes: DagShape[];
  workMs: number;
  rounds: number;
  /** Agent processes, and the concurrency of each. */
  agents: number;
  agentConcurrency: number;
  /** The map node: items, and how many run at once. */
  mapItems: number;
  mapConcurrency: number;
}

export interface MapResult {
  items: number;
  concurrency: number;
  workMs: number;
  idealMs: number;
  makespansMs: number[];
  /** The same items as bare BullMQ jobs, all added at once, on two bare workers of the same slots. */
  bareMakespansMs: number[];
  /** Per item, no work. */
  noWork: CostPerNode;
}

export interface CostPerNode {
  commands: number;
  /** Per command name. */
  byCommand: Record<string, number>;
  cpuMs: number;
  wallMs: number;
}

export interface MakespanResult extends DagShape {
  nodes: number;
  criticalPathMs: number;
  makespansMs: number[];
  /** The same layers as bare BullMQ jobs (each layer added when the last job of the one before completed). */
  bareMakespansMs: number[];
}

export interface WorkflowBenchResult {
  makespans: MakespanResult[];
  /** Nodes of the no-work comparison (the first shape). */
  nodes: number;
  workflow: CostPerNode;
  tasks: CostPerNode;
  validation: { nodes: number; coldMs: number; warmMs: number };
  map: MapResult;
}

const silent = createLogger({ logLevel: 'silent', logPretty: false });

/** `layers` × `width` nodes; each node after the first layer depends on two of the layer before. */
export function layeredDag(layers: number, width: number, ms: number) {
  return Array.from({ length: layers * width }, (_, i) => {
    const layer = Math.floor(i / width);
    const col = i % width;
    const prev = (c: number) => `n${(layer - 1) * width + c}`;
    const dependsOn = layer === 0 ? [] : [...new Set([prev(col), prev((col + 7) % width)])];
    return { id: `n${i}`, type: 'flaky', payload: { latencyMs: ms }, dependsOn };
  });
}

function validationTimes(): { nodes: number; coldMs: number; warmMs: number } {
  const catalogue = new Catalogue(demoTypes);
  const nodes = layeredDag(100, 100, 0);
  const time = () => {
    const t = performance.now();
    validateWorkflow({ nodes }, catalogue, nodes.length);
    return performance.now() - t;
  };
  const coldMs = time();
  const warm = Array.from({ length: 7 }, time).sort((a, b) => a - b);
  return { nodes: nodes.length, coldMs, warmMs: warm[3]! };
}

export async function workflowBench(o: WorkflowBenchOptions, prefix: string, progress: (m: string) => void): Promise<WorkflowBenchResult> {
  const validation = validationTimes();
  progress(`workflow: validated ${validation.nodes} nodes in ${validation.coldMs.toFixed(0)} ms cold, ${validation.warmMs.toFixed(0)} ms warm`);
  const config = loadConfig({ SWITCHYARD_PREFIX: prefix, LOG_LEVEL: 'silent' });
  const redis = createRedis(o.redisUrl, 'client');
  const background = createRedis(o.redisUrl, 'blocking');
  const subscriber = createRedis(o.redisUrl, 'blocking');
  const stats = new Redis(o.redisUrl);
  await new Promise((r) => redis.once('ready', r));
  const catalogue = new Catalogue(demoTypes);
  // The engine alone: every task to the default pool through the fixed router, no fleet snapshot.
  const services = await buildWorkflowServices({ redis, subscriber, background, catalogue, config, keepRunsS: 600, maxNodes: 100_000, idempotencyTtlS: 600, log: silent });
  const { producer, engine, runs } = services;
  const agents = await Promise.all(Array.from({ length: o.agents }, () => startAgent({ redisUrl: o.redisUrl, prefix, type: 'flaky', concurrency: o.agentConcurrency })));
  const pool = new Queue(queueName({ type: 'flaky', pool: 'default' }), { connection: redis, prefix });
  const completedCount = () => pool.getJobCountByTypes('completed');

  const untilDone = async (id: string) => {
    for (;;) {
      const meta = await engine.store.meta(id);
      if (meta?.state === 'completed') return;
      if (meta && meta.state !== 'running') throw new Error(`bench run ended ${meta.state}: ${meta.reason}`);
      await sleep(5);
    }
  };
  const measure = async (run: () => Promise<void>): Promise<CostPerNode> => {
    const c0 = await commandCalls(stats);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const byCommand: Record<string, number> = {};
    for (const [name, calls] of await commandCalls(stats)) if (calls > (c0.get(name) ?? 0)) byCommand[name] = calls - (c0.get(name) ?? 0);
    const commands = Object.values(byCommand).reduce((a, b) => a + b, 0);
    return { commands, byCommand, cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
  };

  const makespans: MakespanResult[] = o.shapes.map((sh) => ({ ...sh, nodes: sh.layers * sh.width, criticalPathMs: sh.layers * o.workMs, makespansMs: [], bareMakespansMs: [] }));
  const wf: CostPerNode[] = [];
  const plain: CostPerNode[] = [];
  const first = o.shapes[0]!;
  const n = first.layers * first.width;
  for (let r = 0; r <= o.rounds; r++) {
    // Makespan with real work per node, for each shape.
    for (const m of makespans) {
      const t0 = performance.now();
      const { run } = await runs.start({ name: 'bench-makespan', nodes: layeredDag(m.layers, m.width, o.workMs) });
      await untilDone(run.id);
      const makespan = performance.now() - t0;
      if (r > 0) m.makespansMs.push(makespan);
      progress(`workflow ${r === 0 ? 'warm-up' : `round ${r}/${o.rounds}`}: ${m.layers} x ${m.width} makespan ${makespan.toFixed(0)} ms (critical path ${m.criticalPathMs} ms)`);
    }
    // The first shape with no work, as a workflow and as plain tasks.
    const w = await measure(async () => {
      const { run: zero } = await runs.start({ name: 'bench-overhead', nodes: layeredDag(first.layers, first.width, 0) });
      await untilDone(zero.id);
    });
    const p = await measure(async () => {
      const target = (await completedCount()) + n;
      for (let i = 0; i < n; i += 1000) await producer.enqueueBatch(Array.from({ length: Math.min(1000, n - i) }, () => ({ type: 'flaky', payload: { latencyMs: 0 } })));
      while ((await completedCount()) < target) await sleep(5);
    });
    if (r === 0) continue; // warm-up
    wf.push(w);
    plain.push(p);
    progress(`workflow round ${r}/${o.rounds}: ${n} no-op nodes ${w.wallMs.toFixed(0)} ms as a workflow, ${p.wallMs.toFixed(0)} ms as tasks`);
  }

  await Promise.all(agents.map((a) => stop(a)));
  for (const m of makespans) m.bareMakespansMs = await bareLayers(o, `${prefix}-bare`, m, progress);
  const map = await mapBench(o, prefix, runs, untilDone, measure, progress);
  await pool.close();
  await services.stop();
  await deletePrefix(stats, prefix);
  await Promise.all([redis, background, subscriber, stats].map((c) => c.quit()));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { makespans, nodes: n, workflow: perItem(wf, n), tasks: perItem(plain, n), validation, map };
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Medians of rounds, per node (or item). */
function perItem(xs: CostPerNode[], n: number): CostPerNode {
  const names = new Set(xs.flatMap((x) => Object.keys(x.byCommand)));
  const byCommand = Object.fromEntries([...names].map((name) => [name, med(xs.map((x) => x.byCommand[name] ?? 0)) / n]));
  return { commands: med(xs.map((x) => x.commands)) / n, byCommand, cpuMs: med(xs.map((x) => x.cpuMs)) / n, wallMs: med(xs.map((x) => x.wallMs)) / n };
}

/**
 * Bare BullMQ beside the engine: two bare worker processes of `concurrency` on one queue, and the
 * makespan of `run` per round (the first a warm-up, not kept).
 */
async function bareRounds(o: WorkflowBenchOptions, prefix: string, concurrency: number, what: string, progress: (m: string) => void, run: (queue: Queue) => Promise<void>): Promise<number[]> {
  const workers = await Promise.all([0, 1].map(() => startBareWorker({ redisUrl: o.redisUrl, prefix, queue: 'bare', concurrency })));
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('bare', { connection, prefix });
  const makespans: number[] = [];
  for (let r = 0; r <= o.rounds; r++) {
    const t0 = performance.now();
    await run(queue);
    const makespan = performance.now() - t0;
    progress(`workflow bare BullMQ ${r === 0 ? 'warm-up' : `round ${r}/${o.rounds}`}: ${what} ${makespan.toFixed(0)} ms`);
    if (r > 0) makespans.push(makespan);
  }
  await Promise.all(workers.map((w) => stop(w)));
  await queue.close();
  await deletePrefix(connection, prefix);
  // A connection handed to BullMQ stays open after close(): left open, it would keep the bench process alive.
  connection.disconnect();
  return makespans;
}

/**
 * The reference for the engine time per layer: the same layers as bare BullMQ jobs on two bare
 * worker processes of the same concurrency, each layer added (one addBulk) as soon as the last job of
 * the one before completed (QueueEvents): what BullMQ's own add, fetch and completion cost per layer.
 */
async function bareLayers(o: WorkflowBenchOptions, prefix: string, shape: DagShape, progress: (m: string) => void): Promise<number[]> {
  const eventsConnection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  const events = new QueueEvents('bare', { connection: eventsConnection, prefix });
  await events.waitUntilReady();
  let completed = 0;
  let wake = (): void => undefined;
  events.on('completed', () => {
    completed++;
    wake();
  });
  const makespans = await bareRounds(o, prefix, shape.width, `${shape.layers} x ${shape.width} layers`, progress, async (queue) => {
    for (let l = 0; l < shape.layers; l++) {
      const target = completed + shape.width;
      await queue.addBulk(Array.from({ length: shape.width }, () => ({ name: 'node', data: { latencyMs: o.workMs }, opts: { removeOnComplete: true } })));
      while (completed < target) await new Promise<void>((resolve) => (wake = resolve));
    }
  });
  await events.close();
  eventsConnection.disconnect();
  return makespans;
}

type Runs = Awaited<ReturnType<typeof buildWorkflowServices>>['runs'];

/**
 * A map node over `mapItems` items: a signal node hands it the list (its payload is its result), so
 * the clock starts when the items are known. Agents: two processes whose slots together are the
 * map's concurrency.
 */
async function mapBench(o: WorkflowBenchOptions, prefix: string, runs: Runs, untilDone: (id: string) => Promise<void>, measure: (run: () => Promise<void>) => Promise<CostPerNode>, progress: (m: string) => void): Promise<MapResult> {
  const agents = await Promise.all([0, 1].map(() => startAgent({ redisUrl: o.redisUrl, prefix, type: 'flaky', concurrency: Math.ceil(o.mapConcurrency / 2) })));
  const once = async (ms: number): Promise<number> => {
    const { run } = await runs.start({
      name: 'bench-map',
      nodes: [
        { id: 'list', kind: 'signal', name: 'items' },
        { id: 'each', kind: 'map', over: 'list.items', type: 'flaky', concurrency: o.mapConcurrency, dependsOn: ['list'] },
      ],
    });
    const t0 = performance.now();
    await runs.signal(run.id, 'items', { items: Array.from({ length: o.mapItems }, () => ({ latencyMs: ms })) });
    await untilDone(run.id);
    return performance.now() - t0;
  };
  const makespansMs: number[] = [];
  const costs: CostPerNode[] = [];
  for (let r = 0; r <= o.rounds; r++) {
    const makespan = await once(o.workMs);
    const cost = await measure(async () => void (await once(0)));
    progress(`workflow map ${r === 0 ? 'warm-up' : `round ${r}/${o.rounds}`}: ${o.mapItems} items x ${o.workMs} ms at ${o.mapConcurrency} at once: ${makespan.toFixed(0)} ms; no work: ${(cost.commands / o.mapItems).toFixed(1)} Redis commands per item`);
    if (r === 0) continue;
    makespansMs.push(makespan);
    costs.push(cost);
  }
  await Promise.all(agents.map((a) => stop(a)));
  const noWork = perItem(costs, o.mapItems);
  const bareMakespansMs = await bareItems(o, `${prefix}-bare`, progress);
  return { items: o.mapItems, concurrency: o.mapConcurrency, workMs: o.workMs, idealMs: (o.mapItems * o.workMs) / o.mapConcurrency, makespansMs, bareMakespansMs, noWork };
}

/** The map's reference: its items as bare BullMQ jobs, added at once (one addBulk), on two bare workers with the map's slots between them. */
function bareItems(o: WorkflowBenchOptions, prefix: string, progress: (m: string) => void): Promise<number[]> {
  return bareRounds(o, prefix, Math.ceil(o.mapConcurrency / 2), `${o.mapItems} jobs x ${o.workMs} ms at ${o.mapConcurrency}`, progress, async (queue) => {
    await queue.addBulk(Array.from({ length: o.mapItems }, () => ({ name: 'item', data: { latencyMs: o.workMs }, opts: { removeOnComplete: true } })));
    for (;;) {
      const c = await queue.getJobCounts('wait', 'active', 'delayed');
      if (c.wait! + c.active! + c.delayed! === 0) break;
      await sleep(5);
    }
  });
}

/** The `limit` commands whose count per node differs most between two measures: [name, a, b]. */
function commandDifferences(a: CostPerNode, b: CostPerNode, limit: number): [string, number, number][] {
  const names = [...new Set([...Object.keys(a.byCommand), ...Object.keys(b.byCommand)])];
  const rows = names.map((name): [string, number, number] => [name, a.byCommand[name] ?? 0, b.byCommand[name] ?? 0]);
  return rows.sort((x, y) => Math.abs(y[1] - y[2]) - Math.abs(x[1] - x[2])).slice(0, limit);
}

/** The `workflow` scenario of `npm run bench`, measured and described. */
export async function workflowScenario(opts: BenchOptions, progress: Progress): Promise<Report> {
  const shapes = opts.shapes.split(',').map((t) => {
    const [layers, width] = t.split('x').map(Number);
    if (!layers || !width) throw new Error(`--shapes: ${JSON.stringify(t)} is not LAYERSxWIDTH`);
    return { layers: layers!, width: width! };
  });
  const concurrency = Math.max(...shapes.map((s) => s.width));
  const o = { redisUrl: opts.redis, shapes, workMs: opts.workMs, rounds: opts.wfRounds, agents: 2, agentConcurrency: concurrency, mapItems: opts.mapItems, mapConcurrency: opts.mapConcurrency };
  const r = await workflowBench(o, `bench-wf-${process.pid}`, progress);
  const text = [
    `Layered DAGs (every node after the first layer depends on two nodes of the layer before) with ${o.workMs} ms of work per node. The engine and producer run in the bench process (as in an API process); ${o.agents} agent processes (\`switchyard agent flaky\`, concurrency ${concurrency} each; \`flaky\` with \`latencyMs\` as the work) run the nodes. ${o.rounds} rounds after a warm-up, medians.`,
    '',
    '| DAG | critical path | makespan, POST to completed | over the critical path | engine time per layer | bare BullMQ, the same layers (each added when the one before completed) | its time per layer |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.makespans.map((m) => {
      const makespan = median(m.makespansMs);
      const over = (makespan / m.criticalPathMs - 1) * 100;
      const bare = median(m.bareMakespansMs);
      return `| ${fmt(m.nodes)} nodes: ${m.layers} layers × ${m.width} | ${fmt(m.criticalPathMs)} ms | ${fmt(makespan)} ms (${m.makespansMs.map((x) => fmt(x)).join(', ')}) | ${over >= 0 ? '+' : ''}${fmt(over, 1)} % | ${fmt((makespan - m.criticalPathMs) / m.layers, 1)} ms | ${fmt(bare)} ms (${m.bareMakespansMs.map((x) => fmt(x)).join(', ')}) | ${fmt((bare - m.criticalPathMs) / m.layers, 1)} ms |`;
    }),
    '',
    "Engine time per layer is what passes between the last dependency of a layer finishing and the layer running, averaged: the settle script, the engine routing and adding the newly ready nodes, and the agents fetching them. It grows with the width of a layer: every node of a layer is settled, enqueued and fetched on the same two cores as Redis and the agents. Bare BullMQ's column is the floor under it: the same layers as plain jobs on two bare workers of the same concurrency, each layer added the moment the last job of the one before completed; most of a layer's time there is BullMQ's fetch, one Lua call per job per worker (a layer of 50 starts over several ms) and its completion.",
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
    '',
    'Where the extra Redis commands of a node go, per command (INFO commandstats; the ten that differ most):',
    '',
    '| command, per node | workflow | plain tasks | workflow − tasks |',
    '|---|---:|---:|---:|',
    ...commandDifferences(r.workflow, r.tasks, 10).map(([name, w, t]) => `| ${name} | ${fmt(w, 2)} | ${fmt(t, 2)} | ${fmt(w - t, 2)} |`),
    '',
    `A map node over ${fmt(r.map.items)} items (\`flaky\` tasks), ${fmt(r.map.concurrency)} at once, on two agent processes of ${fmt(Math.ceil(r.map.concurrency / 2))} slots each; a signal node hands it the list, and the clock starts with the signal:`,
    '',
    '| map | ideal (items × work / concurrency) | makespan, signal to completed | over the ideal | bare BullMQ: the items as jobs added at once, same slots | bare over the ideal |',
    '|---|---:|---:|---:|---:|---:|',
    `| ${fmt(r.map.items)} items × ${fmt(r.map.workMs)} ms, ${fmt(r.map.concurrency)} at once | ${fmt(r.map.idealMs)} ms | ${fmt(median(r.map.makespansMs))} ms (${r.map.makespansMs.map((x) => fmt(x)).join(', ')}) | ${fmt((median(r.map.makespansMs) / r.map.idealMs - 1) * 100, 1)} % | ${fmt(median(r.map.bareMakespansMs))} ms (${r.map.bareMakespansMs.map((x) => fmt(x)).join(', ')}) | ${fmt((median(r.map.bareMakespansMs) / r.map.idealMs - 1) * 100, 1)} % |`,
    '',
    `With no work, per item: ${fmt(r.map.noWork.commands, 1)} Redis commands (a plain task above: ${fmt(r.tasks.commands, 1)}), ${fmt(r.map.noWork.cpuMs, 3)} ms of the engine process's CPU.`,
  ].join('\n');
  const wide = r.makespans.find((m) => m.width >= 50);
  const deep = r.makespans[0]!;
  const deepOver = median(deep.makespansMs) / deep.criticalPathMs - 1;
  const summary = [
    ...r.makespans.map((m) => {
      const over = median(m.makespansMs) / m.criticalPathMs - 1;
      return summaryRow(`workflow makespan, ${fmt(m.nodes)} nodes (${m.layers} × ${m.width}), ms`, `${fmt(m.criticalPathMs)} (critical path)`, fmt(median(m.makespansMs)), `+${fmt(over * 100, 1)} %`, m === deep ? '≤ +10 %' : '', m === deep ? deepOver <= 0.1 : undefined);
    }),
    ...(wide
      ? [
          summaryRow(
            `workflow: engine time per ${wide.width}-wide layer, ms (vs bare BullMQ's own time per layer)`,
            fmt((median(wide.bareMakespansMs) - wide.criticalPathMs) / wide.layers, 1),
            fmt((median(wide.makespansMs) - wide.criticalPathMs) / wide.layers, 1),
            ((median(wide.makespansMs) - wide.criticalPathMs) / (median(wide.bareMakespansMs) - wide.criticalPathMs)).toFixed(2),
            '≤ 5 ms',
            (median(wide.makespansMs) - wide.criticalPathMs) / wide.layers <= 5,
          ),
        ]
      : []),
    summaryRow('workflow: Redis commands per node (vs the same nodes as tasks)', fmt(r.tasks.commands, 1), fmt(r.workflow.commands, 1), (r.workflow.commands / r.tasks.commands).toFixed(2), '≤ 1.3', r.workflow.commands / r.tasks.commands <= 1.3),
    summaryRow(`workflow map: makespan of ${fmt(r.map.items)} items × ${fmt(r.map.workMs)} ms at ${fmt(r.map.concurrency)}, ms (bare BullMQ, same jobs: ${fmt(median(r.map.bareMakespansMs))})`, `${fmt(r.map.idealMs)} (ideal)`, fmt(median(r.map.makespansMs)), (median(r.map.makespansMs) / r.map.idealMs).toFixed(2), '≤ 1.15', median(r.map.makespansMs) / r.map.idealMs <= 1.15),
    summaryRow('workflow map: Redis commands per item (vs a plain task)', fmt(r.tasks.commands, 1), fmt(r.map.noWork.commands, 1), (r.map.noWork.commands / r.tasks.commands).toFixed(2), '≤ 1.3', r.map.noWork.commands / r.tasks.commands <= 1.3),
  ];
  return { summary, title: 'Workflows', command: `npm run bench -- workflow --shapes ${opts.shapes} --work-ms ${o.workMs} --wf-rounds ${o.rounds} --map-items ${o.mapItems} --map-concurrency ${o.mapConcurrency}`, text, data: r };
}
