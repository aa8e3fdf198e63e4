import { z } from 'zod';
import { defineAgentType } from '../src/index.ts';

/** CPU-bound work: text operations plus optional rounds of SHA-256, to load a core on purpose. */
export const transform = defineAgentType({
  name: 'transform',
  version: '1.0.0',
  description: 'Applies text operations in order; `rounds` adds SHA-256 rounds to burn CPU.',
  payload: z.object({
    text: z.string().max(100_000),
    ops: z.array(z.enum(['upper', 'lower', 'reverse', 'trim', 'words'])).max(32).default([]),
    rounds: z.number().int().min(0).max(1_000_000).default(0),
  }),
  result: z.object({ text: z.string(), words: z.number().int().optional(), digest: z.string().optional() }),
  defaults: { attempts: 3, timeoutMs: 30_000 },
});
