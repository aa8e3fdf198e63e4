/** GET /v1/dlq, POST /v1/dlq/:id/replay, POST /v1/dlq/replay (by filter). */
import { deadLetterFilterSchema, deadLetterQuerySchema, type DeadLetters } from '../../task/dead-letters.ts';
import { parseOrThrow } from '../../model/validation.ts';
import type { Reply } from '../problem.ts';

export async function listDeadLetters(dlq: DeadLetters, query: unknown): Promise<Reply> {
  const filter = parseOrThrow(deadLetterQuerySchema, query, 'dead-letter query');
  return { status: 200, body: { tasks: await dlq.list(filter) } };
}

export async function replayDeadLetter(dlq: DeadLetters, id: string): Promise<Reply> {
  return { status: 202, body: await dlq.replay(id) };
}

export async function replayDeadLetters(dlq: DeadLetters, body: unknown): Promise<Reply> {
  const filter = parseOrThrow(deadLetterFilterSchema, body ?? {}, 'replay filter');
  const tasks = await dlq.replayMatching(filter);
  return { status: 202, body: { replayed: tasks.length, tasks } };
}
