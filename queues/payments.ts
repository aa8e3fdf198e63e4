import { z } from 'zod';
import { BREAKER_PRESETS, defineAgentType } from '../src/index.ts';

/** Charges and refunds cards through a (simulated) payment provider. */
export const payments = defineAgentType({
  name: 'payments',
  version: '1.0.0',
  description: 'Charges a card, or refunds an earlier charge (its id comes from ctx.deps).',
  payload: z.object({ action: z.enum(['charge', 'refund']), customer: z.string().min(1).max(200), amountCents: z.number().int().min(1).max(100_000_000), currency: z.string().length(3).default('EUR') }),
  result: z.object({ action: z.enum(['charge', 'refund']), chargeId: z.string(), amountCents: z.number().int() }),
  defaults: { attempts: 5, timeoutMs: 15_000, backoff: { type: 'exponential', delayMs: 200 } },
  breaker: BREAKER_PRESETS.critical,
  // The provider takes at most 100 calls a second from us, and 5 a second per merchant (the task's concurrencyKey).
  limits: { ratePerType: { max: 100, perMs: 1000 }, ratePerKey: { max: 5, perMs: 1000 } },
});
