import { z } from 'zod';
import { defineAgentType } from '../src/index.ts';

export const ETL_STAGES = ['extract', 'validate', 'transform', 'enrich', 'profile', 'load'] as const;

/**
 * One stage of a batch ETL pipeline (the seed's example): extract makes `rows` records, each later
 * stage works on what its dependencies produced (`ctx.deps`). Used by examples/etl-pipeline.json.
 */
export const etl = defineAgentType({
  name: 'etl',
  version: '1.0.0',
  description: 'A stage of a batch ETL pipeline; later stages read their dependencies\' results.',
  payload: z.object({
    stage: z.enum(ETL_STAGES),
    source: z.string().max(200).default('orders.csv'),
    /** extract: how many rows to produce. */
    rows: z.number().int().min(0).max(1_000_000).default(1000),
    /** validate: fraction of rows rejected. */
    rejectRate: z.number().min(0).max(1).default(0.01),
    /** Simulated work per stage. */
    workMs: z.number().int().min(0).max(60_000).default(50),
  }),
  result: z.object({ stage: z.enum(ETL_STAGES), rows: z.number().int(), detail: z.string() }),
  defaults: { attempts: 3, timeoutMs: 60_000 },
});
