/**
 * Estimating π by Monte Carlo, fanned out and reduced by a workflow: 24 `pi-sample` nodes each
 * throw 200 000 random points at the unit square and count those inside the quarter circle; one
 * `pi-reduce` node waits for all of them (fan-in) and combines their counts from `ctx.deps`.
 * Two pools of samplers share the work (here every agent runs in this one process; in production each
 * is a `switchyard agent` of its own). Run: `npm run example:pi`.
 */
import { z } from 'zod';
import { defineAgentType, defineWorker } from '../src/index.ts';
import { startLocalSystem } from './local-system.ts';

const piSample = defineAgentType({
  name: 'pi-sample',
  version: '1.0.0',
  description: 'Throws `samples` random points; counts those within the unit quarter circle.',
  payload: z.object({ samples: z.number().int().min(1).max(10_000_000) }),
  result: z.object({ inside: z.number().int(), samples: z.number().int() }),
});
const piReduce = defineAgentType({
  name: 'pi-reduce',
  version: '1.0.0',
  description: "Combines its dependencies' counts into an estimate of π.",
  payload: z.object({}),
  result: z.object({ pi: z.number(), samples: z.number().int(), error: z.number() }),
});

const sampler = defineWorker(piSample, ({ samples }) => {
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = Math.random();
    const y = Math.random();
    if (x * x + y * y <= 1) inside++;
  }
  return { inside, samples };
});
const reducer = defineWorker(piReduce, (_payload, ctx) => {
  const parts = Object.values(ctx.deps) as Array<{ inside: number; samples: number }>;
  const inside = parts.reduce((n, p) => n + p.inside, 0);
  const samples = parts.reduce((n, p) => n + p.samples, 0);
  const pi = (4 * inside) / samples;
  return { pi, samples, error: Math.abs(pi - Math.PI) };
});

const NODES = 24;
const system = await startLocalSystem([piSample, piReduce] as const, [
  { definition: sampler, pool: 'cpu-a' },
  { definition: sampler, pool: 'cpu-b' },
  { definition: reducer },
]);
try {
  const samples = Array.from({ length: NODES }, (_, i) => ({ id: `sample-${i}`, type: 'pi-sample', payload: { samples: 200_000 } }));
  const started = Date.now();
  const run = await system.client.runWorkflow({
    name: 'monte-carlo-pi',
    nodes: [...samples, { id: 'reduce', type: 'pi-reduce', payload: {}, dependsOn: samples.map((s) => s.id) }],
  });
  console.log(`started ${run.id}: ${NODES} sampling nodes fan out, one reduce node fans in`);
  const end = await system.client.waitWorkflow(run.id, { timeoutMs: 60_000, intervalMs: 100 });
  const byPool = new Map<string, number>();
  for (const n of end.nodes) if (n.type === 'pi-sample') byPool.set(n.pool ?? '?', (byPool.get(n.pool ?? '?') ?? 0) + 1);
  const result = end.nodes.find((n) => n.id === 'reduce')?.result as { pi: number; samples: number; error: number } | undefined;
  console.log(`sampling nodes per pool: ${[...byPool].map(([p, n]) => `${p} ${n}`).join(', ')}`);
  console.log(`run ${end.state} in ${Date.now() - started} ms`);
  if (end.state !== 'completed' || !result) throw new Error(`the run ended ${end.state}`);
  console.log(`π ≈ ${result.pi.toFixed(5)} from ${result.samples.toLocaleString('en')} points (off by ${result.error.toFixed(5)})`);
} finally {
  await system.stop();
}
