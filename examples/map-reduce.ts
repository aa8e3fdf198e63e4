/**
 * Map-reduce with a map node: a list learned at run time (the result of the `docs` node) fans out
 * into one `transform` task per document, at most two at once (`examples/word-count.json`), and a
 * `tally` node (an agent type declared here) reduces the map's result, the counts in document order,
 * to a total. Then a map whose list is not where it says fails with the reason, and the saga's
 * compensation runs. Run: `npm run example:map-reduce`. Against a running Switchyard:
 * `switchyard workflow run examples/word-count.json --wait`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defineAgentType, defineWorker } from '../src/index.ts';
import demoTypes from '../queues/index.ts';
import echo from '../workers/echo.ts';
import payments from '../workers/payments.ts';
import transform from '../workers/transform.ts';
import { startLocalSystem } from './local-system.ts';

/** The reduce step: adds up the word counts of the map it depends on. */
const tally = defineAgentType({
  name: 'tally',
  version: '1.0.0',
  payload: z.object({ of: z.string() }),
  result: z.object({ documents: z.number().int(), words: z.number().int() }),
});
const tallyWorker = defineWorker(tally, async ({ of }, ctx) => {
  const counts = ctx.deps[of] as Array<{ words?: number }>;
  return { documents: counts.length, words: counts.reduce((sum, c) => sum + (c.words ?? 0), 0) };
});

const file = JSON.parse(readFileSync(new URL('./word-count.json', import.meta.url), 'utf8')) as { name: string; nodes: Array<Record<string, unknown>> };
const types = [...demoTypes, tally] as const;
const system = await startLocalSystem(types, [{ definition: echo }, { definition: transform }, { definition: payments }, { definition: tallyWorker }]);
try {
  const { client } = system;

  console.log('1. Count the words of each document (a map, two at once), then add them up');
  const run = await client.runWorkflow({ ...file, nodes: [...file.nodes, { id: 'total', type: 'tally', payload: { of: 'count' }, dependsOn: ['count'] }] });
  const done = await client.waitWorkflow(run.id, { timeoutMs: 20_000, intervalMs: 100 });
  console.log(`   run ended ${done.state}`);
  const count = done.nodes.find((n) => n.id === 'count')!;
  console.log(`   count: ${JSON.stringify(count.items)}; words per document, in order: ${JSON.stringify((count.result as Array<{ words: number }>).map((r) => r.words))}`);
  console.log(`   total: ${JSON.stringify(done.nodes.find((n) => n.id === 'total')!.result)}`);

  console.log('2. A map over a path that holds no list');
  const wrong = await client.runWorkflow({
    name: 'word-count-wrong-path',
    nodes: [
      { id: 'charge', type: 'payments', payload: { action: 'charge', customer: 'ada', amountCents: 500 }, compensate: { payload: { action: 'refund', customer: 'ada', amountCents: 500 } } },
      { ...file.nodes[0]!, dependsOn: ['charge'] },
      { ...file.nodes[1]!, over: 'docs.echoed.message' },
    ],
  });
  const failed = await client.waitWorkflow(wrong.id, { timeoutMs: 20_000, intervalMs: 100 });
  console.log(`   run ended ${failed.state}: ${failed.reason}`);
  for (const c of failed.compensations) console.log(`   compensation of ${c.node}: ${c.state}`);
} finally {
  await system.stop();
}
