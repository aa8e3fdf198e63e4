/**
 * The worker protocol over HTTP (`/v1/workers`, src/model/worker-protocol.ts): register, heartbeat,
 * lease (long poll), extend and report, for agents written in any language. Plain functions from
 * input to Reply; the lease desk (src/agent/lease-desk.ts) does the work.
 */
import type { LeaseDesk } from '../../agent/lease-desk.ts';
import { SwitchyardError } from '../../model/errors.ts';
import { parseOrThrow } from '../../model/validation.ts';
import { extendRequestSchema, leaseRequestSchema, type LeaseRequest, resultsRequestSchema, workerHeartbeatSchema, workerRegistrationSchema } from '../../model/worker-protocol.ts';
import type { Reply } from '../problem.ts';
import { requireObject } from './tasks.ts';

export async function registerWorker(desk: LeaseDesk, body: unknown): Promise<Reply> {
  const worker = await desk.register(parseOrThrow(workerRegistrationSchema, requireObject(body), 'worker registration'));
  return { status: 201, body: worker, headers: { location: `/v1/workers/${worker.id}` } };
}

export async function deregisterWorker(desk: LeaseDesk, id: string): Promise<Reply> {
  await desk.deregister(id);
  return { status: 204 };
}

export async function heartbeat(desk: LeaseDesk, id: string, body: unknown): Promise<Reply> {
  return { status: 200, body: await desk.heartbeat(id, parseOrThrow(workerHeartbeatSchema, requireObject(body), 'heartbeat')) };
}

/** A lease request's body, checked first: how long it may wait sets its deadline. */
export const leaseRequest = (body: unknown): LeaseRequest => parseOrThrow(leaseRequestSchema, body ?? {}, 'lease request');

export async function lease(desk: LeaseDesk, id: string, req: LeaseRequest, signal: AbortSignal): Promise<Reply> {
  return { status: 200, body: await desk.lease(id, req, signal) };
}

export async function extendLeases(desk: LeaseDesk, id: string, body: unknown): Promise<Reply> {
  const { leases } = parseOrThrow(extendRequestSchema, requireObject(body), 'extend request');
  return { status: 200, body: { leases: await desk.extend(id, leases) } };
}

/** Many ends per request, each with its own state; a request of one whose lease was lost is answered 409. */
export async function reportResults(desk: LeaseDesk, id: string, body: unknown): Promise<Reply> {
  const { results } = parseOrThrow(resultsRequestSchema, requireObject(body), 'results');
  const committed = await desk.report(id, results);
  const only = committed.length === 1 ? committed[0] : undefined;
  if (only?.state === 'conflict') throw new SwitchyardError('LEASE_LOST', `the lease of task ${only.task} was lost (it expired, or the task was taken back or cancelled): nothing was written; the task runs again elsewhere`);
  return { status: 200, body: { results: committed } };
}
