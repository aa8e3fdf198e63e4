/**
 * Simulated open dashboards, in their own process so their downloads do not slow the load generator:
 * each polls what dashboard/page.js polls (GET /v1/pools, /v1/agents, /v1/workflows?limit=10, and the
 * open run's first page of nodes for those that have one open) every interval, staggered, and the
 * schedules (GET /v1/schedules?limit=100) every fifth poll, as the page does. Runs until
 * SIGTERM, then prints its figures as one JSON line on stdout.
 * Input: DASH_URL, DASH_COUNT, DASH_INTERVAL_MS, DASH_OPEN (how many have a run open), DASH_RUN (its id).
 */
import { setTimeout as sleep } from 'node:timers/promises';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};
const url = env('DASH_URL');
const count = Number(env('DASH_COUNT'));
const intervalMs = Number(env('DASH_INTERVAL_MS'));
const open = Number(process.env.DASH_OPEN ?? '0');
const run = process.env.DASH_RUN ?? '';

const pollMs: number[] = [];
let requests = 0;
let bytes = 0;
let errors = 0;
let stopping = false;

async function get(path: string): Promise<void> {
  const res = await fetch(url + path, { headers: { accept: 'application/json' } });
  const body = await res.arrayBuffer();
  requests++;
  bytes += body.byteLength;
  if (!res.ok) errors++;
}

async function dashboard(i: number): Promise<void> {
  await sleep((intervalMs * i) / count);
  const paths = ['/v1/pools', '/v1/agents', '/v1/workflows?limit=10', ...(i < open && run ? [`/v1/workflows/${run}?nodeLimit=200`] : [])];
  for (let tick = 0; !stopping; tick++) {
    const t0 = performance.now();
    try {
      await Promise.all([...paths, ...(tick % 5 === 0 ? ['/v1/schedules?limit=100'] : [])].map(get));
    } catch {
      errors++;
    }
    const took = performance.now() - t0;
    pollMs.push(took);
    // As the page does: the next poll starts one interval after this one ended.
    if (!stopping) await sleep(intervalMs);
  }
}

const started = performance.now();
const all = Promise.all(Array.from({ length: count }, (_, i) => dashboard(i)));
process.once('SIGTERM', () => {
  stopping = true;
  void all.then(() => {
    const seconds = (performance.now() - started) / 1000;
    const sorted = [...pollMs].sort((a, b) => a - b);
    const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
    process.stdout.write(`${JSON.stringify({ polls: pollMs.length, requests, bytes, errors, seconds, pollMs: { p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? 0) } })}\n`);
    process.exit(0);
  });
});
