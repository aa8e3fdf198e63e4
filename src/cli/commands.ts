/**
 * The CLI's client commands: `enqueue` (one task, or `--many` in batches with a progress bar), `task`, `agents`, `pools`, `breakers`, `dlq list|replay`
 * (`schedules ...` in schedules.ts).
 * Each talks to the API through the typed client, prints a table or a line a person can read (or
 * JSON with --json), and exits with a code a script can test:
 * 0 done, 1 error (the API refused, or cannot be reached), 4 the task ended other than completed,
 * 5 gave up waiting.
 */
import { readFile } from 'node:fs/promises';
import { SingleBar, Presets } from 'cli-progress';
import { ApiError, createClient, WaitTimeoutError, type SwitchyardClient } from '../client/client.ts';
import type { BreakerView } from '../model/breaker-state.ts';
import type { TaskView } from '../task/view.ts';
import { table } from './table.ts';

export const EXIT = { ok: 0, error: 1, notCompleted: 4, timeout: 5 } as const;

export interface ClientCommandOptions {
  url: string;
  apiKey?: string;
  json?: boolean;
}

type Out = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean };

/** Runs `body` with a client, turning the client's errors into a message and an exit code. */
export async function withClient(o: ClientCommandOptions, body: (c: SwitchyardClient) => Promise<number>, err: Out = process.stderr): Promise<number> {
  const client = createClient({ url: o.url, ...(o.apiKey ? { apiKey: o.apiKey } : {}) });
  try {
    return await body(client);
  } catch (e) {
    if (e instanceof WaitTimeoutError) {
      err.write(`switchyard: ${e.message}\n`);
      return EXIT.timeout;
    }
    if (e instanceof ApiError) {
      err.write(`switchyard: ${e.detail}\n`);
      for (const i of e.errors) err.write(`  ${i.path || '(body)'}: ${i.message}\n`);
      return EXIT.error;
    }
    throw e;
  }
}

/** `<json>` or `@file`: the payload argument of `enqueue` (and `schedules add`'s --payload and --workflow, `what` naming it). */
export async function readJsonArgument(arg: string, what = 'the payload'): Promise<unknown> {
  let text = arg;
  if (arg.startsWith('@')) {
    try {
      text = await readFile(arg.slice(1), 'utf8');
    } catch (e) {
      throw new ApiError(0, 'Cannot read file', `cannot read ${arg.slice(1)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(0, 'Invalid JSON', `${what} is not JSON (${e instanceof Error ? e.message : String(e)}); pass '{"field": ...}' or @file.json`);
  }
}

const describeTask = (t: TaskView) =>
  `${t.id}  ${t.state}  ${t.type}.${t.pool}  attempts ${t.attempts.made}/${t.attempts.max}` +
  (t.progress !== undefined ? `  progress ${typeof t.progress === 'number' ? `${t.progress} %` : JSON.stringify(t.progress)}` : '') +
  (t.error ? `\n  error: ${t.error}` : '') +
  (t.result !== undefined ? `\n  result: ${JSON.stringify(t.result)}` : '') +
  (t.note ? `\n  note: ${t.note}` : '');

/** Tasks per request when `enqueue --many` sends a list (the API takes up to SWITCHYARD_MAX_BATCH). */
const BATCH_CHUNK = 500;

/** `enqueue --many`: the argument is a JSON array of payloads, sent in batches with a progress bar. */
/** What the enqueue flags set on every task they enqueue. */
export interface EnqueueFlags {
  pool?: string;
  concurrencyKey?: string;
  concurrencyLimit?: number;
}

const flagOptions = (o: EnqueueFlags) => ({
  ...(o.pool ? { pool: o.pool } : {}),
  ...(o.concurrencyKey !== undefined ? { concurrencyKey: o.concurrencyKey } : {}),
  ...(o.concurrencyLimit !== undefined ? { concurrencyLimit: o.concurrencyLimit } : {}),
});

async function enqueueMany(c: SwitchyardClient, type: string, payloads: unknown, o: ClientCommandOptions & EnqueueFlags, out: Out, err: Out): Promise<number> {
  if (!Array.isArray(payloads)) throw new ApiError(0, 'Not a list', 'with --many, the payload argument must be a JSON array of payloads');
  const bar = !o.json && err.isTTY ? new SingleBar({ format: ' {bar} {value}/{total} enqueued', hideCursor: true, stream: err as NodeJS.WriteStream }, Presets.shades_classic) : undefined;
  bar?.start(payloads.length, 0);
  const ids: string[] = [];
  try {
    for (let i = 0; i < payloads.length; i += BATCH_CHUNK) {
      const chunk = payloads.slice(i, i + BATCH_CHUNK).map((payload) => ({ type, payload, ...flagOptions(o) }));
      ids.push(...(await c.enqueueBatch(chunk as never)).map((t) => t.id));
      bar?.update(ids.length);
    }
  } finally {
    bar?.stop();
  }
  out.write(o.json ? `${JSON.stringify({ enqueued: ids.length, ids })}\n` : `enqueued ${ids.length} ${type} task(s)\n`);
  return EXIT.ok;
}

export async function enqueueCommand(
  type: string,
  payloadArg: string,
  o: ClientCommandOptions & EnqueueFlags & { wait?: boolean; timeout?: number; key?: string; many?: boolean },
  out: Out = process.stdout,
  err: Out = process.stderr,
): Promise<number> {
  return withClient(o, async (c) => {
    const payload = await readJsonArgument(payloadArg);
    if (o.many) return enqueueMany(c, type, payload, o, out, err);
    const task = await c.enqueue(type, payload as never, { ...flagOptions(o), ...(o.key ? { idempotencyKey: o.key } : {}) });
    if (!o.wait) {
      out.write(o.json ? `${JSON.stringify(task)}\n` : `${task.duplicate ? 'already enqueued' : 'enqueued'} ${task.id} (${task.state}, pool ${task.pool})\n`);
      return EXIT.ok;
    }
    const done = await c.wait(task, o.timeout ? { timeoutMs: o.timeout * 1000 } : {});
    out.write(o.json ? `${JSON.stringify(done)}\n` : `${describeTask(done)}\n`);
    return done.state === 'completed' ? EXIT.ok : EXIT.notCompleted;
  });
}

export async function taskCommand(id: string, o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const t = await c.get(id);
    out.write(o.json ? `${JSON.stringify(t)}\n` : `${describeTask(t)}\n`);
    return EXIT.ok;
  });
}

export async function agentsCommand(filter: Record<string, string>, o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const agents = await c.agents(filter);
    if (o.json) out.write(`${JSON.stringify(agents)}\n`);
    else out.write(table(['ID', 'TYPE', 'POOL', 'HEALTH', 'LOAD', 'WEIGHT', 'TAGS'], agents.map((a) => [a.id, a.type, a.pool, a.draining ? `${a.health} (draining)` : a.health, `${a.running}/${a.concurrency}`, String(a.weight), a.tags.join(',')])));
    return EXIT.ok;
  });
}

export async function poolsCommand(type: string | undefined, o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const pools = await c.pools(type);
    if (o.json) out.write(`${JSON.stringify(pools)}\n`);
    else {
      out.write(table(['POOL', 'AGENTS', 'WEIGHT', 'WAITING', 'ACTIVE', 'DONE', 'DEAD', 'BREAKER', 'ELIGIBLE'], pools.map((p) => [
        p.name, `${p.agents.HEALTHY + p.agents.DEGRADED}/${p.agents.total}`, String(p.weight), String(p.backlog.waiting), String(p.backlog.active), String(p.backlog.completed), String(p.backlog.dead), p.breaker,
        p.eligible ? 'yes' : `no: ${p.reasons.join('; ')}`,
      ])));
    }
    return EXIT.ok;
  });
}

const BREAKER_COLUMNS = ['BREAKER', 'STATE', 'TRIPS', 'WINDOW (ok/failed)', 'REASON'];
const clock = (iso: string | undefined) => (iso ? iso.slice(11, 19) : '?');

/**
 * One line of `switchyard breakers`. The window counts outcomes only while CLOSED (a trip starts it
 * afresh), so an OPEN or HALF_OPEN breaker shows what it waits for instead of a misleading 0/0.
 */
export function breakerRow(b: BreakerView): string[] {
  const window =
    b.state === 'CLOSED' ? `${b.window.successes}/${b.window.failures}`
    : b.state === 'OPEN' ? `- (probes from ${clock(b.halfOpenAt)} UTC)`
    : `- (${b.probesInFlight} probe(s) in flight)`;
  return [b.name, b.state, String(b.trips), window, b.reason ?? ''];
}

export async function breakersCommand(o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const breakers = await c.breakers();
    if (o.json) out.write(`${JSON.stringify(breakers)}\n`);
    else out.write(table(BREAKER_COLUMNS, breakers.map(breakerRow)));
    return EXIT.ok;
  });
}

export async function dlqListCommand(filter: Record<string, string>, o: ClientCommandOptions, out: Out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const tasks = await c.deadLetters(filter);
    if (o.json) out.write(`${JSON.stringify(tasks)}\n`);
    else out.write(table(['ID', 'POOL', 'ATTEMPTS', 'DIED', 'ERROR'], tasks.map((t) => [t.id, `${t.type}.${t.pool}`, String(t.attempts.made), t.finishedAt ?? '', (t.error ?? '').slice(0, 80)])));
    return EXIT.ok;
  });
}

/** `dlq replay <id>` replays one; `dlq replay --all [filters]` replays every match, with a progress bar. */
export async function dlqReplayCommand(id: string | undefined, filter: Record<string, string>, o: ClientCommandOptions, out: Out = process.stdout, err: Out = process.stderr): Promise<number> {
  return withClient(o, async (c) => {
    if (id) {
      const t = await c.replay(id);
      out.write(o.json ? `${JSON.stringify(t)}\n` : `replayed ${t.id} (${t.state}, pool ${t.pool})\n`);
      return EXIT.ok;
    }
    // The API replays at most `limit` (1 000) a call: call again until nothing matches, showing progress.
    const total = (await c.deadLetters({ ...filter, limit: '1000' })).length;
    const bar = !o.json && err.isTTY && total > 0 ? new SingleBar({ format: ' {bar} {value}/{total} replayed', hideCursor: true, stream: err as NodeJS.WriteStream }, Presets.shades_classic) : undefined;
    bar?.start(total, 0);
    let replayed = 0;
    try {
      for (;;) {
        const r = await c.replayAll({ ...filter, limit: 100 });
        replayed += r.replayed;
        bar?.update(Math.min(replayed, total));
        if (r.replayed === 0 || replayed >= total) break;
      }
    } finally {
      bar?.stop();
    }
    out.write(o.json ? `${JSON.stringify({ replayed })}\n` : `replayed ${replayed} dead task(s)\n`);
    return EXIT.ok;
  });
}
