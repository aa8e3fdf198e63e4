/**
 * POST /v1/workflows, GET /v1/workflows (recent runs, without their nodes), GET /v1/workflows/:id
 * (a page of its nodes), DELETE /v1/workflows/:id, POST /v1/workflows/:id/signals/:name.
 */
import { z } from 'zod';
import { parseOrThrow, queryInteger } from '../../model/validation.ts';
import { NODE_PAGE_DEFAULT, NODE_PAGE_MAX, type WorkflowRuns } from '../../workflow/runs.ts';
import type { Reply } from '../problem.ts';
import { requireObject } from './tasks.ts';

export async function createWorkflow(runs: WorkflowRuns, body: unknown): Promise<Reply> {
  const { run, created } = await runs.start(requireObject(body));
  return { status: created ? 202 : 200, body: created ? run : { ...run, duplicate: true }, headers: { location: `/v1/workflows/${run.id}` } };
}

export const runViewQuerySchema = z.strictObject({
  nodeOffset: queryInteger(z.number().int().min(0)).default(0).describe('first node of the page, in request order'),
  nodeLimit: queryInteger(z.number().int().min(0).max(NODE_PAGE_MAX)).default(NODE_PAGE_DEFAULT).describe(`nodes in the page (0: none, only the counts); the answer's nodePage.next is the next page's nodeOffset`),
});

/** `query` pages the nodes (`?nodeOffset=&nodeLimit=`); without it, the first NODE_PAGE_DEFAULT nodes. */
export async function getWorkflow(runs: WorkflowRuns, id: string, query: unknown = {}): Promise<Reply> {
  const { nodeOffset, nodeLimit } = parseOrThrow(runViewQuerySchema, query, 'workflow run query');
  return { status: 200, body: await runs.view(id, { offset: nodeOffset, limit: nodeLimit }) };
}

/** 202 while running nodes are being aborted and completed ones compensated; 200 once it is over. */
export async function cancelWorkflow(runs: WorkflowRuns, id: string): Promise<Reply> {
  const view = await runs.cancel(id);
  return { status: view.state === 'cancelled' ? 200 : 202, body: view };
}

export const recentRunsQuerySchema = z.strictObject({ limit: queryInteger(z.number().int().min(1).max(100)).default(20) });

export async function listWorkflows(runs: WorkflowRuns, query: unknown): Promise<Reply> {
  const { limit } = parseOrThrow(recentRunsQuerySchema, query, 'workflow list query');
  return { status: 200, body: { runs: await runs.recent(limit) } };
}

/** 200 when the signal node was waiting and is done with the payload; 202 when it is kept until the node is reached. */
export async function sendSignal(runs: WorkflowRuns, id: string, name: string, body: unknown): Promise<Reply> {
  const sent = await runs.signal(id, name, body);
  return { status: sent.state === 'delivered' ? 200 : 202, body: sent };
}
