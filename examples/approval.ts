/**
 * An approval flow with durable nodes: a card is charged, then the run waits for a person's answer
 * (a signal node with a timeout and a schema for the answer), sleeps through a cooling-off period,
 * and sends the receipt. Twice: once the approver answers at once (an answer sent before the run
 * reaches the node is kept and taken when it does), once nobody answers in time, and the saga refunds
 * the charge. Run: `npm run example:approval`. Against a running Switchyard, the answer is
 * `switchyard workflow signal <run> approve '{"approved":true,"by":"ada"}'`.
 */
import { readFileSync } from 'node:fs';
import types from '../queues/index.ts';
import payments from '../workers/payments.ts';
import sendEmail from '../workers/send-email.ts';
import { startLocalSystem } from './local-system.ts';

/** The flow of `expense-approval.json` (the README's tour posts it as it is), with a 2 s timeout here. */
const file = JSON.parse(readFileSync(new URL('./expense-approval.json', import.meta.url), 'utf8')) as { name: string; nodes: Array<Record<string, unknown>> };
const approvalFlow = () => ({ ...file, nodes: file.nodes.map((n) => (n.kind === 'signal' ? { ...n, timeoutMs: 2000 } : n)) });

const system = await startLocalSystem(types, [{ definition: payments }, { definition: sendEmail }]);
try {
  const { client } = system;

  console.log('1. The approver answers at once (kept if the run has not reached the question yet)');
  const answered = await client.runWorkflow(approvalFlow());
  const sent = await client.signal(answered.id, 'approve', { approved: true, by: 'grace' });
  console.log(`   signal ${sent.signal}: ${sent.state}`);
  const done = await client.waitWorkflow(answered.id, { timeoutMs: 20_000, intervalMs: 100 });
  console.log(`   run ended ${done.state}`);
  for (const n of done.nodes) console.log(`     ${n.id.padEnd(12)} ${n.state.padEnd(8)} ${JSON.stringify(n.result ?? null)}`);

  console.log('2. Nobody answers within 2 s');
  const ignored = await client.runWorkflow(approvalFlow());
  const timedOut = await client.waitWorkflow(ignored.id, { timeoutMs: 20_000, intervalMs: 100 });
  console.log(`   run ended ${timedOut.state}: ${timedOut.reason}`);
  for (const c of timedOut.compensations) console.log(`   compensation of ${c.node}: ${c.state}`);
  const late = await client.signal(ignored.id, 'approve', { approved: true, by: 'grace' }).then(() => 'accepted', (err: Error) => err.message);
  console.log(`   a late answer: ${late}`);
} finally {
  await system.stop();
}
