/** POST /v1/tasks, POST /v1/tasks/batch, GET /v1/tasks/:id: plain functions from input to Reply. */
import { SwitchyardError, ValidationError } from '../../model/errors.ts';
import type { TaskLookup } from '../../task/lookup.ts';
import type { TaskCanceller } from '../../task/cancel.ts';
import type { EnqueueResult, TaskProducer } from '../../task/producer.ts';
import { batchRequestSchema } from '../../model/task-request.ts';
import { parseOrThrow } from '../../model/validation.ts';
import type { Reply } from '../problem.ts';

export function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('the request body must be a JSON object', [{ path: '', message: 'expected a JSON object' }]);
  }
  return body as Record<string, unknown>;
}

export async function createTask(producer: TaskProducer, body: unknown): Promise<Reply> {
  const result = await producer.enqueue(requireObject(body));
  const { task, created } = result;
  return { status: created ? 202 : 200, body: answered(result), headers: { location: `/v1/tasks/${encodeURIComponent(task.id)}` } };
}

/** A task as an enqueue answers it: flagged when a throttle or debounce window answered with it. */
const answered = ({ task, flow }: EnqueueResult) => (flow ? { ...task, [flow]: true } : task);

export async function createBatch(producer: TaskProducer, body: unknown): Promise<Reply> {
  const { tasks } = parseOrThrow(batchRequestSchema, requireObject(body), 'batch request');
  const results = await producer.enqueueBatch(tasks);
  return { status: 202, body: { tasks: results.map((r) => (r.created || r.flow ? answered(r) : { ...r.task, duplicate: true })) } };
}

export async function getTask(lookup: TaskLookup, id: string, keepCompletedS: number): Promise<Reply> {
  const view = await lookup.find(id);
  if (!view) {
    throw new SwitchyardError(
      'TASK_NOT_FOUND',
      `no task with id ${JSON.stringify(id)} (completed tasks are kept for ${keepCompletedS} s, SWITCHYARD_KEEP_COMPLETED_S)`,
    );
  }
  return { status: 200, body: view };
}

export async function cancelTask(canceller: TaskCanceller, id: string): Promise<Reply> {
  const view = await canceller.cancel(id);
  return view.state === 'cancelled'
    ? { status: 200, body: view }
    : { status: 202, body: { ...view, note: 'cancellation requested: the agent running it aborts it' } };
}
