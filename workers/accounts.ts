import { createHash } from 'node:crypto';
import { defineWorker } from '../src/index.ts';
import { accounts } from '../queues/accounts.ts';

const accountId = (customer: string) => `acct_${createHash('sha256').update(customer).digest('hex').slice(0, 12)}`;

export default defineWorker(accounts, (p, ctx) => {
  ctx.log.info({ customer: p.customer, action: p.action }, `${p.action} account`);
  return { action: p.action, accountId: accountId(p.customer) };
});
