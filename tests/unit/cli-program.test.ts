/** The `switchyard` program's help: every command and option says what it does. */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { breakerRow } from '../../src/cli/commands.ts';
import { buildProgram } from '../../src/cli/program.ts';

const commands = (c: Command): Command[] => [c, ...c.commands.flatMap(commands)];
const fullName = (c: Command): string => (c.parent ? `${fullName(c.parent)} ${c.name()}` : c.name());

describe('switchyard --help', () => {
  it('describes every command and every option', () => {
    const missing: string[] = [];
    for (const c of commands(buildProgram())) {
      if (!c.description()) missing.push(fullName(c));
      for (const o of c.options) if (!o.description) missing.push(`${fullName(c)} ${o.flags}`);
    }
    expect(missing).toEqual([]);
  });

  it('names the bench command as a user types it', () => {
    const help = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../bench/run.ts', import.meta.url)), '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/^Usage: switchyard bench /);
  });
});

describe('switchyard breakers', () => {
  const base = { name: 'pool:flaky.broken', trips: 1, probesInFlight: 0, reason: '9 of 9 outcomes failed', window: { successes: 0, failures: 0 } };
  it('shows the window of a CLOSED breaker', () => {
    expect(breakerRow({ ...base, state: 'CLOSED', window: { successes: 7, failures: 2 } })[3]).toBe('7/2');
  });
  it('shows when an OPEN breaker admits probes, not an empty 0/0 window beside its trip reason', () => {
    const row = breakerRow({ ...base, state: 'OPEN', halfOpenAt: '2026-12-02T17:20:05.000Z' });
    expect(row[3]).toBe('- (probes from 17:20:05 UTC)');
    expect(row[4]).toBe('9 of 9 outcomes failed');
  });
  it('shows the probes of a HALF_OPEN breaker', () => {
    expect(breakerRow({ ...base, state: 'HALF_OPEN', probesInFlight: 1 })[3]).toBe('- (1 probe(s) in flight)');
  });
});
