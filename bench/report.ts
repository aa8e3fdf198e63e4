/** What every scenario returns for RESULTS.md, and the helpers they format it with. */
/** One line of the summary table at the top of RESULTS.md. */
export interface SummaryRow {
  figure: string;
  reference: string;
  switchyard: string;
  ratio: string;
  target: string;
  met: boolean | undefined;
}

export interface Report {
  title: string;
  command: string;
  text: string;
  summary: SummaryRow[];
  data: unknown;
}

/** The command line's options (bench/run.ts declares them). */
export interface BenchOptions {
  jobs: number; concurrency: number; rounds: number; agents: number; seconds: number; redis: string;
  shapes: string; workMs: number; wfRounds: number; mapItems: number; mapConcurrency: number; rate: number; duration: number; saturation: number; memTasks: number;
  httpSeconds: number; httpConnections: number; routeRate: number; routeSeconds: number; smoke?: boolean;
  durJobs: number; durRounds: number; kills: number; killAfterMs: number;
}

export type Progress = (message: string) => void;

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const pct = (x: number) => `${fmt(x * 100, 3)} %`;
export const summaryRow = (figure: string, reference: string, switchyard: string, ratio: string, target = '', met?: boolean): SummaryRow => ({ figure, reference, switchyard, ratio, target, met });
