/**
 * A fault-tolerant service: `quote` tasks go to two pools, `primary` (weight 3) and `backup`
 * (weight 1). Midway the primary's downstream goes down: its breaker opens within a few failed
 * tasks, new work goes to the backup, and the tasks caught in the primary are retried or moved, so
 * none is lost. Then the downstream comes back: a probe closes the breaker and the primary takes its
 * share again. Run: `npm run example:breaker`.
 */
import { z } from 'zod';
import { defineAgentType, defineWorker, type TaskHandle } from '../src/index.ts';
import { startLocalSystem } from './local-system.ts';

const quote = defineAgentType({
  name: 'quote',
  version: '1.0.0',
  description: 'Asks a downstream pricing service for a quote.',
  payload: z.object({ sku: z.string() }),
  result: z.object({ sku: z.string(), price: z.number(), from: z.string() }),
  defaults: { attempts: 5, backoff: { type: 'exponential', delayMs: 100, maxDelayMs: 1000 } },
  // Trips at half the outcomes failing over at least 4; tries a probe after 1.5 s.
  breaker: { failureRatio: 0.5, minRequests: 4, windowMs: 10_000, openMs: 1500, halfOpenProbes: 1 },
});

let primaryDown = false;
const price = (sku: string) => 10 + (sku.length % 7);
const primary = defineWorker(quote, async ({ sku }) => {
  await new Promise((r) => setTimeout(r, 5));
  if (primaryDown) throw new Error('pricing service (primary) unreachable: ECONNREFUSED');
  return { sku, price: price(sku), from: 'primary' };
});
const backup = defineWorker(quote, async ({ sku }) => {
  await new Promise((r) => setTimeout(r, 5));
  return { sku, price: price(sku), from: 'backup' };
});

const system = await startLocalSystem([quote] as const, [
  { definition: primary, pool: 'primary', weight: 3 },
  { definition: backup, pool: 'backup', weight: 1 },
]);
const { client } = system;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const breakerOf = async (pool: string) => (await client.breakers()).find((b) => b.name === `pool:quote.${pool}`)?.state ?? 'CLOSED';
let sent = 0;

/** Sends `n` quotes at about 50/s and waits for all of them; returns who answered. */
async function phase(title: string, n: number, during?: () => Promise<void>): Promise<Map<string, number>> {
  console.log(`\n${title}`);
  const tasks: TaskHandle<'quote'>[] = [];
  for (let i = 0; i < n; i++) {
    tasks.push(await client.enqueue('quote', { sku: `sku-${sent++}` }));
    await sleep(20);
    if (during && i % 10 === 9) await during();
  }
  const answered = new Map<string, number>();
  for (const t of tasks) {
    const done = await client.wait(t, { timeoutMs: 30_000, intervalMs: 50 });
    if (done.state !== 'completed') throw new Error(`task ${t.id} ended ${done.state}: ${done.error ?? ''}`);
    answered.set(done.result!.from, (answered.get(done.result!.from) ?? 0) + 1);
  }
  console.log(`  ${n} quotes, all completed; answered by ${[...answered].map(([from, k]) => `${from} ${k}`).join(', ')}`);
  return answered;
}

try {
  const calm = await phase('1. Both pools healthy: work splits 3 : 1 by weight', 40);

  primaryDown = true;
  let opened = false;
  const down = await phase('2. The primary\'s downstream goes down', 40, async () => {
    if (!opened && (await breakerOf('primary')) === 'OPEN') {
      opened = true;
      console.log("  the primary pool's breaker is OPEN: new quotes go to the backup");
    }
  });
  opened ||= (await breakerOf('primary')) !== 'CLOSED';

  primaryDown = false;
  console.log('\n3. The downstream is back');
  // Probes need traffic: keep quotes flowing until a probe succeeds and the breaker closes.
  const closedAt = Date.now();
  for (let i = 0; (await breakerOf('primary')) !== 'CLOSED'; i++) {
    if (i > 200) throw new Error('the breaker did not close within 20 s');
    await client.enqueue('quote', { sku: `probe-${i}` });
    sent++;
    await sleep(100);
  }
  console.log(`  a probe succeeded: the breaker is CLOSED again after ${Date.now() - closedAt} ms`);
  const after = await phase('4. Both pools healthy again', 40);

  // phase() waited for every quote it sent and throws unless each completed: none was lost.
  console.log(`\nsummary: ${sent} quotes sent, none lost; primary answered ${calm.get('primary') ?? 0}/40 before, ${down.get('primary') ?? 0}/40 while down, ${after.get('primary') ?? 0}/40 after`);
  if (!opened) throw new Error('the primary breaker never opened');
} finally {
  await system.stop();
}
