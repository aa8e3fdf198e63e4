/**
 * The /dashboard page: agents with health and load, pools with weights, backlog and breaker state,
 * the newest workflow runs with node counts by state, and schedules with their next and last fire,
 * refreshed every 2 s from the JSON API (GET /v1/agents, /v1/pools, /v1/workflows; the nodes of one run
 * only while the user has it open; GET /v1/schedules every 10 s). A static page and one script, no build step; the API
 * mounts this router behind the same auth as everything else, so the page's requests carry the
 * browser's credentials.
 */
import { readFileSync } from 'node:fs';
import { Router } from 'express';
import { FINAL_RUN_STATES, NODE_STATES } from '../src/index.ts';

const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8');
/** The script, with the model's state lists written in (one source for the engine, the API and this page). */
const script = readFileSync(new URL('./page.js', import.meta.url), 'utf8').replace('__SWITCHYARD_STATES__', () => JSON.stringify({ finalRun: FINAL_RUN_STATES, node: NODE_STATES }));

export function dashboardRouter(): Router {
  const router = Router();
  router.get('/', (_req, res) => void res.type('html').send(page));
  router.get('/page.js', (_req, res) => void res.type('js').send(script));
  return router;
}
