import { setTimeout as sleep } from 'node:timers/promises';
import { defineWorker } from '../src/index.ts';
import { etl } from '../queues/etl.ts';

type StageResult = { stage: string; rows: number; detail: string };

/** Each stage takes the rows its dependencies produced; `load` writes what enrich and profile agree on. */
export default defineWorker(etl, async (p, ctx) => {
  await sleep(p.workMs, undefined, { signal: ctx.signal });
  const inputs = Object.values(ctx.deps) as StageResult[];
  const rowsIn = inputs.length ? Math.min(...inputs.map((r) => r.rows)) : 0;
  switch (p.stage) {
    case 'extract':
      return { stage: p.stage, rows: p.rows, detail: `read ${p.rows} rows from ${p.source}` };
    case 'validate': {
      const rejected = Math.round(rowsIn * p.rejectRate);
      return { stage: p.stage, rows: rowsIn - rejected, detail: `${rejected} rows rejected` };
    }
    case 'transform':
      return { stage: p.stage, rows: rowsIn, detail: 'normalised currencies and dates' };
    case 'enrich':
      return { stage: p.stage, rows: rowsIn, detail: 'joined customer segments' };
    case 'profile':
      return { stage: p.stage, rows: rowsIn, detail: `profiled ${rowsIn} rows` };
    case 'load':
      return { stage: p.stage, rows: rowsIn, detail: `loaded ${rowsIn} rows (inputs: ${inputs.map((r) => r.stage).sort().join(', ')})` };
  }
});
