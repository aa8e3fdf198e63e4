/**
 * Workflows through real processes: the API and agents as `switchyard api` / `switchyard agent`
 * children, the examples run with the CLI (`switchyard workflow run <file> --wait`), and an agent
 * killed with SIGKILL in the middle of a run.
 */
import { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { queueName } from '../../src/model/names.ts';
import { json } from '../support/http.ts';
import { fastFleetEnv, runCli, startAgentProcess, startApiProcess, type ApiProcess, type Spawned } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix, redis } = useRedisPrefix('e2e-workflow');
const env = fastFleetEnv(prefix, { SWITCHYARD_LOCK_MS: '2000', SWITCHYARD_STALLED_INTERVAL_MS: '1000' });
let api: ApiProcess;
const etlAgents: Spawned[] = [];

beforeAll(async () => {
  const started = await Promise.all([
    startApiProcess(env),
    startAgentProcess('etl', env, ['--concurrency', '4']),
    startAgentProcess('etl', env, ['--concurrency', '4']),
    startAgentProcess('accounts', env),
    startAgentProcess('payments', env),
    startAgentProcess('send-email', env),
  ]);
  api = started[0] as ApiProcess;
  etlAgents.push(started[1], started[2]);
}, 90_000);

const cli = (args: string[]) => runCli(args, api.url);

interface RunBody {
  id: string;
  state: string;
  nodes: Array<{ id: string; state: string; result?: { rows: number; detail: string } }>;
  compensations: Array<{ node: string; state: string }>;
}

describe('the examples, run with the CLI', () => {
  it('runs the ETL pipeline to completion, the parallel branch feeding the load', async () => {
    const { code, stdout, stderr } = await cli(['workflow', 'run', 'examples/etl-pipeline.json', '--wait', '--json', '--timeout', '60']);
    expect(code, stderr).toBe(0);
    const run = JSON.parse(stdout) as RunBody;
    expect(run.state).toBe('completed');
    const load = run.nodes.find((n) => n.id === 'load')!;
    expect(load.result).toEqual({ stage: 'load', rows: 4950, detail: 'loaded 4950 rows (inputs: enrich, profile)' });
  });

  it('runs the trial-activation saga: the email bounces, the charge is refunded, then the account removed', async () => {
    const { code, stdout, stderr } = await cli(['workflow', 'run', 'examples/trial-activation.json', '--wait', '--timeout', '60']);
    expect(code, stderr).toBe(4);
    expect(stdout).toMatch(/trial-activation wf_\S+: compensated \(node send-welcome-email failed: 550 mailbox ada@bounce.invalid does not exist\)/);
    expect(stdout).toMatch(/compensations, in order:\n\s+charge-card\s+done\n\s+provision-account\s+done\n/);
  });

  it('explains an invalid workflow file and exits 1', async () => {
    const { code, stderr } = await cli(['workflow', 'run', 'tests/e2e/fixtures/cyclic-workflow.json']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/nodes\[0\]\.dependsOn: cycle: a -> b -> a/);
  });
});

describe('an agent killed with SIGKILL mid-workflow', () => {
  it('still completes the run, each node enqueued once by the engine', async () => {
    // 6 layers of 8 nodes, each depending on two nodes of the layer before; 400 ms of work each.
    const nodes = Array.from({ length: 48 }, (_, i) => {
      const layer = Math.floor(i / 8);
      const dependsOn = layer === 0 ? [] : [...new Set([`n${(layer - 1) * 8 + (i % 8)}`, `n${(layer - 1) * 8 + ((i + 3) % 8)}`])];
      return { id: `n${i}`, type: 'etl', payload: { stage: 'transform', workMs: 400 }, dependsOn };
    });
    const res = await fetch(`${api.url}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kill-test', nodes }) });
    expect(res.status).toBe(202);
    const { id } = (await json(res)) as { id: string };
    const view = async () => (await json(fetch(`${api.url}/v1/workflows/${id}`))) as RunBody;
    await waitFor(async () => (await view()).nodes.filter((n) => n.state === 'done').length >= 12, { timeoutMs: 30_000, what: 'a quarter of the nodes done' });
    const victim = etlAgents[0]!;
    await victim.kill('SIGKILL');
    const end = await waitFor(async () => {
      const v = await view();
      return v.state === 'completed' || v.state === 'failed' || v.state === 'compensated' ? v : undefined;
    }, { timeoutMs: 90_000, intervalMs: 200, what: 'the run to end' });
    expect(end.state).toBe('completed');
    expect(end.nodes.every((n) => n.state === 'done')).toBe(true);
    // One job per node, in the one pool: the engine never enqueued a node twice.
    const queue = new Queue(queueName({ type: 'etl', pool: 'default' }), { connection: redis, prefix });
    const jobs = await queue.getJobs(['completed'], 0, -1);
    const ofRun = jobs.filter((j) => j.id?.startsWith(`${id}.`));
    expect(ofRun.map((j) => j.id).sort()).toEqual(nodes.map((n) => `${id}.${n.id}`).sort());
    await queue.close();
  }, 150_000);
});
