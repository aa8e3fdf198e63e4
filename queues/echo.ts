import { z } from 'zod';
import { defineAgentType } from '../src/index.ts';

/** Returns what it is given: the smallest possible task, for smoke tests and overhead benchmarks. */
export const echo = defineAgentType({
  name: 'echo',
  version: '1.0.0',
  description: 'Returns its payload unchanged.',
  payload: z.object({ message: z.string().max(10_000).optional() }).catchall(z.unknown()),
  result: z.object({ echoed: z.record(z.string(), z.unknown()) }),
  defaults: { attempts: 3, timeoutMs: 10_000 },
});
