import { z } from 'zod';
import { defineAgentType } from '../src/index.ts';

/** Sends a templated email through a (simulated) SMTP relay; an address on `bounce.invalid` bounces for good. */
export const sendEmail = defineAgentType({
  name: 'send-email',
  version: '1.0.0',
  description: 'Sends a templated email; mail to *@bounce.invalid fails permanently (a hard bounce).',
  payload: z.object({ to: z.email(), template: z.string().min(1).max(100), vars: z.record(z.string(), z.string()).default({}) }),
  result: z.object({ messageId: z.string(), to: z.string() }),
  defaults: { attempts: 3, timeoutMs: 15_000, backoff: { type: 'exponential', delayMs: 100 } },
});
