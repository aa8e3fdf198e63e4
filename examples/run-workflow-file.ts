/**
 * Runs one of the workflow files here (`etl-pipeline.json`, `trial-activation.json`) on a whole
 * Switchyard in this process, with an agent for every type the file uses (from workers/), and prints
 * how each node and compensation ended. Run: `npm run example:etl`, `npm run example:saga`. Against
 * a running Switchyard the same file goes through `switchyard workflow run <file> --wait`.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import types from '../queues/index.ts';
import type { WorkerDefinition } from '../src/index.ts';
import { startLocalSystem } from './local-system.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: tsx examples/run-workflow-file.ts <workflow.json>');
const workflow = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; nodes: Array<{ type: string; compensate?: { type?: string } }> };
const used = [...new Set(workflow.nodes.flatMap((n) => [n.type, n.compensate?.type ?? n.type]))];
const workers = await Promise.all(used.map(async (type) => ((await import(`../workers/${type}.ts`)) as { default: WorkerDefinition }).default));

const system = await startLocalSystem(types, workers.map((definition) => ({ definition })));
try {
  // With an idempotencyKey the client may send the request again if the API answers 503 for a moment.
  const run = await system.client.runWorkflow({ ...workflow, idempotencyKey: `example-${randomUUID()}` });
  console.log(`started ${workflow.name ?? 'workflow'} ${run.id} with agents for ${used.join(', ')}`);
  const end = await system.client.waitWorkflow(run.id, { timeoutMs: 60_000, intervalMs: 100 });
  console.log(`ended ${end.state}${end.reason ? ` (${end.reason})` : ''}`);
  for (const n of end.nodes) console.log(`  ${n.id.padEnd(12)} ${n.state.padEnd(9)} ${n.error ?? JSON.stringify(n.result ?? null)}`);
  if (end.compensations.length) {
    console.log('compensations, in the order they ran:');
    for (const c of end.compensations) console.log(`  ${c.node.padEnd(12)} ${c.state}${c.error ? `  ${c.error}` : ''}`);
  }
} finally {
  await system.stop();
}
