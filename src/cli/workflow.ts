/**
 * `switchyard workflow run <file> [--wait]`: posts a workflow file to the API; with --wait, shows
 * a progress bar of settled nodes and prints how the run ended. Exit codes: 0 completed (or
 * accepted, without --wait), 1 error (invalid file, API refused), 4 the run ended otherwise
 * (compensated, failed, cancelled), 5 gave up waiting.
 * `switchyard workflow signal <run> <name> <payload>`: sends a signal to a run's signal node.
 */
import { readFile } from 'node:fs/promises';
import { SingleBar, Presets } from 'cli-progress';
import { EXIT, readJsonArgument, withClient, type ClientCommandOptions } from './commands.ts';
import type { RunView } from '../workflow/view.ts';

export interface WorkflowRunOptions {
  url: string;
  apiKey?: string;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

/** Nodes that will not run any more, from the run's counts (the progress views carry no nodes). */
const settled = ({ nodeCounts: c }: RunView) => c.done + c.dead + c.skipped + c.cancelled;

export async function runWorkflowFile(file: string, o: WorkflowRunOptions, out = process.stdout, err = process.stderr): Promise<number> {
  let workflow: unknown;
  try {
    workflow = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    err.write(`switchyard: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.error;
  }
  return withClient(o, async (client) => {
    const run = await client.runWorkflow(workflow);
    if (!o.wait) {
      out.write(o.json ? `${JSON.stringify(run)}\n` : `${run.duplicate ? 'already started' : 'started'} ${run.id} (${run.state})\n`);
      return EXIT.ok;
    }
    if (!o.json) err.write(`${run.duplicate ? 'already started' : 'started'} ${run.id}\n`);
    const bar = !o.json && err.isTTY ? new SingleBar({ format: ' {bar} {value}/{total} nodes | {state}', hideCursor: true, stream: err }, Presets.shades_classic) : undefined;
    const end = await client.waitWorkflow(run.id, {
      ...(o.timeout ? { timeoutMs: o.timeout * 1000 } : {}),
      onProgress: (view) => {
        if (!bar) return;
        if (!bar.isActive) bar.start(view.progress.total, 0, { state: view.state });
        bar.update(settled(view), { state: view.state });
      },
    }).finally(() => bar?.stop());
    if (o.json) out.write(`${JSON.stringify(end)}\n`);
    else out.write(describe(end));
    return end.state === 'completed' ? EXIT.ok : EXIT.notCompleted;
  }, err);
}

function describe(run: RunView): string {
  const lines = [`workflow ${run.name} ${run.id}: ${run.state}${run.reason ? ` (${run.reason})` : ''}`];
  for (const n of run.nodes) lines.push(`  ${n.id.padEnd(20)} ${n.state.padEnd(9)} ${n.pool ? `${n.type}.${n.pool}` : (n.type ?? n.kind)}${n.items ? ` ${n.items.done}/${n.items.total} items${n.items.failed ? ` (${n.items.failed} failed)` : ''}` : ''}${n.error ? `  ${n.error}` : ''}`);
  const more = run.progress.total - run.nodes.length;
  if (more > 0) {
    const counts = Object.entries(run.nodeCounts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ');
    lines.push(`  ... and ${more} more nodes (in all: ${counts}; GET /v1/workflows/${run.id}?nodeOffset=${run.nodes.length} reads on)`);
  }
  if (run.compensations.length > 0) {
    lines.push('  compensations, in order:');
    for (const c of run.compensations) lines.push(`    ${c.node.padEnd(18)} ${c.state}${c.error ? `  ${c.error}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Sends a signal; exit 0 when delivered or kept, 1 when refused (404, 409, an invalid payload). */
export async function signalCommand(runId: string, name: string, payloadArg: string, o: ClientCommandOptions, out = process.stdout): Promise<number> {
  return withClient(o, async (c) => {
    const payload = await readJsonArgument(payloadArg);
    if (typeof payload !== 'object' || payload === null) throw new Error('a signal\'s payload is a JSON object or array');
    const sent = await c.signal(runId, name, payload);
    out.write(o.json ? `${JSON.stringify(sent)}\n` : sent.state === 'delivered' ? `delivered ${name} to ${runId} (node ${sent.node})\n` : `kept ${name} for ${runId}: node ${sent.node} takes it when it is reached\n`);
    return EXIT.ok;
  });
}
