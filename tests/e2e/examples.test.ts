/** The runnable examples, run as a user would (`npm run example:*`): exit 0, and output that says what happened. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/processes.ts';

function npmRun(script: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], { cwd: ROOT, env: process.env });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('examples', () => {
  it('example:pi estimates π with a fan-out / fan-in workflow over two pools', async () => {
    const { code, out } = await npmRun('example:pi');
    expect(code, out).toBe(0);
    expect(out).toMatch(/run completed in \d+ ms/);
    const pi = Number(/π ≈ (\d\.\d+)/.exec(out)?.[1]);
    expect(Math.abs(pi - Math.PI)).toBeLessThan(0.02);
    expect(out).toMatch(/sampling nodes per pool: cpu-\w \d+, cpu-\w \d+/);
  }, 60_000);

  it('example:breaker opens the failing pool\'s breaker, shifts the traffic, loses nothing, and recovers', async () => {
    const { code, out } = await npmRun('example:breaker');
    expect(code, out).toBe(0);
    expect(out).toMatch(/breaker is OPEN: new quotes go to the backup/);
    expect(out).toMatch(/2\. The primary's downstream goes down\n.*\n\s+40 quotes, all completed; answered by backup 40/);
    expect(out).toMatch(/the breaker is CLOSED again/);
    expect(out).toMatch(/none lost/);
  }, 90_000);

  it('example:etl runs the pipeline file to completion, load reading both its inputs', async () => {
    const { code, out } = await npmRun('example:etl');
    expect(code, out).toBe(0);
    expect(out).toMatch(/ended completed/);
    expect(out).toMatch(/load\s+done\s+.*inputs: enrich, profile/);
  }, 60_000);

  it('example:approval takes the answer once, sleeps, sends the receipt; without an answer it times out and refunds the charge', async () => {
    const { code, out } = await npmRun('example:approval');
    expect(code, out).toBe(0);
    expect(out).toMatch(/signal approve: (delivered|kept)\n\s+run ended completed/);
    expect(out).toMatch(/approval\s+done\s+\{"approved":true,"by":"grace"\}/);
    expect(out).toMatch(/cooling-off\s+done\s+\{"wokeAt":/);
    expect(out).toMatch(/run ended compensated: node approval failed: no signal "approve" within 2000 ms\n\s+compensation of charge: done/);
    expect(out).toMatch(/a late answer: 409 /);
  }, 60_000);

  it('example:map-reduce counts each document\'s words in a map, adds them up, and fails a map over a path that holds no list', async () => {
    const { code, out } = await npmRun('example:map-reduce');
    expect(code, out).toBe(0);
    expect(out).toMatch(/count: \{"total":5,"done":5,"failed":0,"running":0\}; words per document, in order: \[4,5,3,5,2\]/);
    expect(out).toMatch(/total: \{"documents":5,"words":19\}/);
    expect(out).toMatch(/run ended compensated: node count failed: map over docs\.echoed\.message: expected an array, found a string\n\s+compensation of charge: done/);
  }, 60_000);

  it('example:saga runs the trial activation: the email bounces, the charge and then the account are undone', async () => {
    const { code, out } = await npmRun('example:saga');
    expect(code, out).toBe(0);
    expect(out).toMatch(/ended compensated/);
    expect(out).toMatch(/compensations, in the order they ran:\n\s+charge-card\s+done\n\s+provision-account\s+done/);
  }, 60_000);
});
