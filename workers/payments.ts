import { defineWorker } from '../src/index.ts';
import { payments } from '../queues/payments.ts';

/** A refund compensates a charge: it finds the charge id in ctx.deps (the charge node's result). */
export default defineWorker(payments, (p, ctx) => {
  if (p.action === 'charge') {
    // The idempotency key makes a retried charge the same charge at the provider.
    const chargeId = `ch_${ctx.idempotencyKey.replace(/[^A-Za-z0-9]/g, '').slice(-16)}`;
    ctx.log.info({ customer: p.customer, amountCents: p.amountCents, chargeId }, 'card charged');
    return { action: p.action, chargeId, amountCents: p.amountCents };
  }
  const charge = Object.values(ctx.deps)[0] as { chargeId?: string } | undefined;
  const chargeId = charge?.chargeId ?? 'unknown';
  ctx.log.info({ customer: p.customer, chargeId }, 'charge refunded');
  return { action: p.action, chargeId, amountCents: p.amountCents };
});
