/**
 * The client commands of the CLI (`enqueue`, `task`, `agents`, `pools`, `breakers`, `dlq`) run as
 * processes against an API and agents that are processes too: their output and exit codes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fastFleetEnv, runCli, startAgentProcess, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';
import { json } from '../support/http.ts';

const { prefix } = useRedisPrefix('e2e-cli');
const env = fastFleetEnv(prefix);
let api: ApiProcess;

beforeAll(async () => {
  const [a] = await Promise.all([startApiProcess(env), startAgentProcess('echo', env), startAgentProcess('flaky', env)]);
  api = a as ApiProcess;
  await waitFor(async () => ((await json(fetch(`${api.url}/v1/agents?health=HEALTHY`))) as unknown[]).length === 2, { what: 'both agents HEALTHY', timeoutMs: 30_000 });
}, 90_000);

const cli = (...args: string[]) => runCli(args, api.url);

describe('switchyard CLI, client commands', () => {
  it('enqueue --wait prints the finished task; task <id> reads it back', async () => {
    const r = await cli('enqueue', 'echo', '{"message":"hi"}', '--wait', '--json');
    expect(r.code, r.stderr).toBe(0);
    const task = JSON.parse(r.stdout) as { id: string; state: string; result: unknown };
    expect(task).toMatchObject({ state: 'completed', result: { echoed: { message: 'hi' } } });
    const read = await cli('task', task.id);
    expect(read.code).toBe(0);
    expect(read.stdout).toMatch(new RegExp(`^${task.id.replace(/[~]/g, '\\$&')}  completed  echo\\.default`));
  });

  it('enqueue refuses a bad payload with exit 1 and the field, and a task that dies exits 4', async () => {
    const bad = await cli('enqueue', 'echo', '{"message":5}');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/payload\.message/);
    const notJson = await cli('enqueue', 'echo', '{oops');
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toMatch(/not JSON/);
    const dies = await cli('enqueue', 'flaky', '{"failRate":1,"fatal":true}', '--wait');
    expect(dies.code, dies.stderr).toBe(4);
    expect(dies.stdout).toMatch(/ dead /);
  });

  it('enqueue --many sends a JSON array of payloads from a file in batches', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'switchyard-cli-')), 'payloads.json');
    writeFileSync(file, JSON.stringify(Array.from({ length: 1200 }, (_, i) => ({ message: `m${i}` }))));
    const r = await cli('enqueue', 'echo', `@${file}`, '--many', '--json');
    expect(r.code, r.stderr).toBe(0);
    const { enqueued, ids } = JSON.parse(r.stdout) as { enqueued: number; ids: string[] };
    expect(enqueued).toBe(1200);
    expect(new Set(ids).size).toBe(1200);
  });

  it('bench passes its arguments to the benchmark runner', async () => {
    const r = await cli('bench', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: switchyard bench/);
  });

  it('agents, pools and breakers print tables, or JSON with --json', async () => {
    const agents = await cli('agents', '--type', 'echo');
    expect(agents.code).toBe(0);
    expect(agents.stdout.split('\n')[0]).toMatch(/^ID\s+TYPE\s+POOL\s+HEALTH\s+LOAD\s+WEIGHT\s+TAGS$/);
    expect(agents.stdout).toMatch(/echo\s+default\s+HEALTHY/);
    const pools = await cli('pools', '--type', 'echo');
    expect(pools.stdout).toMatch(/^echo\.default\s+1\/1\s+/m);
    const breakers = await cli('breakers', '--json');
    expect(breakers.code).toBe(0);
    expect(Array.isArray(JSON.parse(breakers.stdout))).toBe(true);
  });

  it('dlq list shows dead tasks and dlq replay routes one again; replay without an id or --all is refused', async () => {
    const dead = await cli('enqueue', 'flaky', '{"failRate":1,"fatal":true}', '--wait', '--json');
    const id = (JSON.parse(dead.stdout) as { id: string }).id;
    const list = await cli('dlq', 'list', '--type', 'flaky');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    const replay = await cli('dlq', 'replay', id);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(new RegExp(`^replayed ${id.replace(/[~]/g, '\\$&')} `));
    const refused = await cli('dlq', 'replay');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--all/);
  });
});
