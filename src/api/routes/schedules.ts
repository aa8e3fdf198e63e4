/** POST /v1/schedules, GET /v1/schedules (a page), GET/PATCH/DELETE /v1/schedules/:id. */
import { z } from 'zod';
import { parseOrThrow, queryInteger } from '../../model/validation.ts';
import type { Schedules } from '../../schedule/schedules.ts';
import type { Reply } from '../problem.ts';
import { requireObject } from './tasks.ts';

export async function createSchedule(schedules: Schedules, body: unknown): Promise<Reply> {
  const view = await schedules.create(requireObject(body));
  return { status: 201, body: view, headers: { location: `/v1/schedules/${view.id}` } };
}

export const scheduleListQuerySchema = z.strictObject({
  offset: queryInteger(z.number().int().min(0)).default(0).describe('first schedule of the page, oldest first'),
  limit: queryInteger(z.number().int().min(1).max(1000)).default(100),
});

export async function listSchedules(schedules: Schedules, query: unknown): Promise<Reply> {
  const { offset, limit } = parseOrThrow(scheduleListQuerySchema, query, 'schedule list query');
  return { status: 200, body: await schedules.list(offset, limit) };
}

export async function getSchedule(schedules: Schedules, id: string): Promise<Reply> {
  return { status: 200, body: await schedules.get(id) };
}

export async function updateSchedule(schedules: Schedules, id: string, body: unknown): Promise<Reply> {
  return { status: 200, body: await schedules.update(id, requireObject(body)) };
}

export async function deleteSchedule(schedules: Schedules, id: string): Promise<Reply> {
  await schedules.remove(id);
  return { status: 204 };
}
