/**
 * Batch handlers: `defineWorker(type, { batch: { max, waitMs } }, async (items) => results)`. The
 * agent runs each task as it always does (checks, admission, timeout, cancel, the result's schema,
 * retries, commit); only the handler call is shared: the tasks an agent has started are handed to one
 * call of the batch handler, `max` at most, waiting at most `waitMs` after the first for company.
 *
 * What each item gets (documented in the README, tested in tests/integration/batch-handler.test.ts):
 * - the handler returns an array of one entry per item, in order: an entry that is an Error fails
 *   that item's attempt with it (a FatalError or RetryAfterError as from a single handler), any other
 *   entry is that item's result, checked against the type's result schema;
 * - the handler throws (or rejects): every item's attempt fails with that error;
 * - it returns fewer or more entries than items, or not an array: every item's attempt fails with an
 *   error saying so; nothing of that batch is committed, and each item is retried under its own policy.
 * Each item's attempt is its own: its timeout or cancel ends it (its `ctx.signal` fires) while the
 * call goes on; what the call later returns for it is dropped. A batch is at most the agent's
 * concurrency: the tasks it holds started at once.
 */
import { z } from 'zod';

export const batchOptionsSchema = z.object({
  max: z.number().int().min(1).max(10_000).describe('most tasks in one call of the batch handler'),
  waitMs: z.number().int().min(0).max(60_000).default(10).describe('longest wait after the first task of a batch for more to join it'),
});
export type BatchOptions = z.input<typeof batchOptionsSchema>;

/** One task of a batch: its payload and its context (worker-definition.ts's BatchItem names the types). */
export interface Item<P, C> {
  payload: P;
  ctx: C;
}

/** One entry per item, in order: its result, or the Error its attempt fails with. */
export type Results<R> = ReadonlyArray<R | Error>;

interface Waiting<P, C> {
  item: Item<P, C>;
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
}

/** The per-task handler an agent calls, gathering the calls into batches for `run`; `name` is the type's, for errors. */
export function batchedHandler<P, C, R>(name: string, run: (items: ReadonlyArray<Item<P, C>>) => Promise<Results<R>> | Results<R>, options: BatchOptions): (payload: P, ctx: C) => Promise<R> {
  const parsed = batchOptionsSchema.safeParse(options);
  if (!parsed.success) throw new TypeError(`batch options of ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { max, waitMs } = parsed.data;
  let pending: Array<Waiting<P, C>> = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    void runBatch(name, run, batch);
  };
  return (payload, ctx) =>
    new Promise<R>((resolve, reject) => {
      pending.push({ item: { payload, ctx }, resolve: resolve as (result: unknown) => void, reject });
      if (pending.length >= max) flush();
      else timer ??= setTimeout(flush, waitMs);
    });
}

async function runBatch<P, C, R>(name: string, run: (items: ReadonlyArray<Item<P, C>>) => Promise<Results<R>> | Results<R>, batch: Array<Waiting<P, C>>): Promise<void> {
  let results: unknown;
  try {
    results = await run(batch.map((w) => w.item));
  } catch (err) {
    for (const w of batch) w.reject(err);
    return;
  }
  if (!Array.isArray(results) || results.length !== batch.length) {
    const got = Array.isArray(results) ? `${results.length} results` : `${results === null ? 'null' : typeof results}, not an array,`;
    const err = new Error(`the batch handler of ${name} returned ${got} for ${batch.length} tasks; it must return one result or Error per task, in order`);
    for (const w of batch) w.reject(err);
    return;
  }
  batch.forEach((w, i) => (results[i] instanceof Error ? w.reject(results[i]) : w.resolve(results[i])));
}
