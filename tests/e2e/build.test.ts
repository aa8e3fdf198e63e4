/**
 * The compiled CLI (scripts/build.js, which `npm install` runs): built into a folder of its own, it
 * runs the API and agents with no TypeScript loader, serves the dashboard's files, and still loads a
 * deployment's own agent types and workers that were not compiled (through tsx).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/redis/embedded.ts';
import { json } from '../support/http.ts';
import { fastFleetEnv, ROOT } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-build');
mkdirSync(join(ROOT, 'test-output'), { recursive: true });
const out = mkdtempSync(join(ROOT, 'test-output', 'build-'));
const MAIN = join(out, 'src', 'cli', 'main.js');
const started: ChildProcess[] = [];

/** Runs the compiled CLI (plain `node`, no loader) and keeps its output. */
function compiled(args: string[], env: Record<string, string>) {
  const proc = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, LOG_PRETTY: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
  started.push(proc);
  return { proc, output: () => output };
}

async function enqueueAndWait(url: string, type: string, payload: unknown): Promise<unknown> {
  const res = await fetch(`${url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type, payload }) });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const done = await waitFor(async () => {
    const t = (await json(fetch(`${url}/v1/tasks/${id}`))) as { state: string; result?: unknown };
    return t.state === 'completed' ? t : undefined;
  }, { timeoutMs: 30_000, what: `task ${id} to complete` });
  return done.result;
}

/** An API and one agent, both compiled, with `extra` settings; resolves once the agent is ready. */
async function fleet(type: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  const env = fastFleetEnv(prefix, { PORT: String(port), HOST: '127.0.0.1', ...extra });
  const api = compiled(['api'], env);
  const agent = compiled(['worker', type], env); // the command's older name, still accepted
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => ((await json(fetch(`${url}/v1/agents?health=HEALTHY&type=${type}`))) as unknown[]).length === 1, {
    timeoutMs: 30_000,
    what: `a compiled API on ${url} and a ready ${type} agent\n--- api ---\n${api.output()}\n--- agent ---\n${agent.output()}`,
  });
  const stop = () => Promise.all([api, agent].map(({ proc }) => (proc.exitCode === null ? new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM'))) : undefined)));
  return { url, stop };
}

beforeAll(() => {
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js'), '--out-dir', out], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await Promise.all(
    started.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => (p.once('exit', r), p.kill('SIGKILL'))) : undefined)),
  );
  rmSync(out, { recursive: true, force: true });
});

describe('the compiled CLI', () => {
  it('prints its help and the package version', () => {
    const version = spawnSync(process.execPath, [MAIN, '--version'], { cwd: ROOT, encoding: 'utf8' });
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    const help = spawnSync(process.execPath, [MAIN, '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: switchyard/);
  });

  it('runs the API and an agent of the project, and serves the dashboard', async () => {
    const { url, stop } = await fleet('echo');
    expect(await enqueueAndWait(url, 'echo', { message: 'compiled' })).toEqual({ echoed: { message: 'compiled' } });
    const page = await fetch(`${url}/dashboard`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    await stop();
  });

  it("loads a deployment's own agent types and workers that were not compiled", async () => {
    const dir = mkdtempSync(join(ROOT, 'test-output', 'own-types-'));
    try {
      mkdirSync(join(dir, 'workers'));
      const lib = JSON.stringify(join(ROOT, 'src', 'index.ts'));
      writeFileSync(
        join(dir, 'types.ts'),
        `import { z } from 'zod';\nimport { defineAgentType } from ${lib};\n` +
          `export const increment = defineAgentType({ name: 'increment', version: '1.0.0', payload: z.object({ n: z.number() }), result: z.object({ n: z.number() }) });\n` +
          `export default [increment];\n`,
      );
      writeFileSync(
        join(dir, 'workers', 'increment.ts'),
        `import { defineWorker } from ${lib};\nimport { increment } from '../types.ts';\n` +
          `export default defineWorker(increment, async (p: { n: number }) => ({ n: p.n + 1 }));\n`,
      );
      const { url, stop } = await fleet('increment', { SWITCHYARD_TYPES: join(dir, 'types.ts'), SWITCHYARD_WORKERS_DIR: join(dir, 'workers') });
      expect(await enqueueAndWait(url, 'increment', { n: 41 })).toEqual({ n: 42 });
      await stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
