import { z } from 'zod';
import { defineAgentType } from '../src/index.ts';

/** Creates and removes customer accounts (the first step of the trial-activation saga). */
export const accounts = defineAgentType({
  name: 'accounts',
  version: '1.0.0',
  description: 'Provisions or deprovisions a customer account.',
  payload: z.object({ action: z.enum(['provision', 'deprovision']), customer: z.string().min(1).max(200), plan: z.string().max(50).default('trial') }),
  result: z.object({ action: z.enum(['provision', 'deprovision']), accountId: z.string() }),
  defaults: { attempts: 3, timeoutMs: 10_000, backoff: { type: 'exponential', delayMs: 100 } },
});
