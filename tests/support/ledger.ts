/**
 * The fault tests' ledger: what the `flaky` agents wrote (FLAKY_LEDGER, one JSON line per start and
 * end of an execution) read back and reconciled against what the API acknowledged.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface LedgerLine {
  id: string;
  attempt: number;
  pid: number;
  ev: 'start' | 'end';
  t: number;
}

export function readLedger(file: string): LedgerLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LedgerLine];
      } catch {
        return []; // a line cut short by a SIGKILL
      }
    });
}

/** Executions (starts) per task id. */
export function startsById(lines: readonly LedgerLine[]): Map<string, LedgerLine[]> {
  const m = new Map<string, LedgerLine[]>();
  for (const l of lines) {
    if (l.ev !== 'start') continue;
    const list = m.get(l.id);
    if (list) list.push(l);
    else m.set(l.id, [l]);
  }
  return m;
}

/** Tasks a process had started and not ended by time `t` (in flight when it was killed). */
export function inFlight(lines: readonly LedgerLine[], pid: number, t: number): string[] {
  const open = new Set<string>();
  for (const l of lines) {
    if (l.pid !== pid || l.t > t) continue;
    if (l.ev === 'start') open.add(l.id);
    else open.delete(l.id);
  }
  return [...open];
}

export const percentile = (xs: readonly number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
