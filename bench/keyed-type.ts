/** The agent type of the flow bench's keyed runs (bench/keyed-agent.ts runs it; the bench process enqueues it). */
import { z } from 'zod';
import { defineAgentType } from '../src/index.ts';

export const keyedType = defineAgentType({
  name: 'keyed',
  version: '1.0.0',
  payload: z.object({ key: z.string(), ms: z.number().int().min(0) }),
  result: z.object({}),
});
