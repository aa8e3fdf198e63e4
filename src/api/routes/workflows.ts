/** POST /v1/workflows, GET /v1/workflows (recent runs), GET /v1/workflows/:id, DELETE /v1/workflows/:id. */
import { z } from 'zod';
import { parseOrThrow } from '../../validation.ts';
import type { WorkflowRuns } from '../../workflow/runs.ts';
import type { Reply } from '../problem.ts';
import { requireObject } from './tasks.ts';

export async function createWorkflow(runs: WorkflowRuns, body: unknown): Promise<Reply> {
  const { run, created } = await runs.start(requireObject(body));
  return { status: created ? 202 : 200, body: created ? run : { ...run, duplicate: true }, headers: { location: `/v1/workflows/${run.id}` } };
}

export async function getWorkflow(runs: WorkflowRuns, id: string): Promise<Reply> {
  return { status: 200, body: await runs.view(id) };
}

/** 202 while running nodes are being aborted and completed ones compensated; 200 once it is over. */
export async function cancelWorkflow(runs: WorkflowRuns, id: string): Promise<Reply> {
  const view = await runs.cancel(id);
  return { status: view.state === 'cancelled' ? 200 : 202, body: view };
}

export const recentRunsQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20) });

export async function listWorkflows(runs: WorkflowRuns, query: unknown): Promise<Reply> {
  const { limit } = parseOrThrow(recentRunsQuerySchema, query, 'workflow list query');
  return { status: 200, body: { runs: await runs.recent(limit) } };
}
