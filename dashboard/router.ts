/**
 * The /dashboard page: agents with health and load, pools with weights, backlog and breaker state,
 * and the newest workflow runs with node counts by state, refreshed every 2 s from the JSON API
 * (GET /v1/agents, /v1/pools, /v1/workflows; the nodes of one run only while the user has it open). A static page and one script, no build step; the API
 * mounts this router behind the same auth as everything else, so the page's requests carry the
 * browser's credentials.
 */
import { readFileSync } from 'node:fs';
import { Router } from 'express';

const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8');
const script = readFileSync(new URL('./page.js', import.meta.url), 'utf8');

export function dashboardRouter(): Router {
  const router = Router();
  router.get('/', (_req, res) => void res.type('html').send(page));
  router.get('/page.js', (_req, res) => void res.type('js').send(script));
  return router;
}
