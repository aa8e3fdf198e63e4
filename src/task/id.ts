/**
 * Task ids: `<type>~<time><random>`. The type prefix lets a reader find the task's pool queues
 * without an index write per task; the time part keeps ids roughly sortable. `~` cannot occur in
 * a type name, and BullMQ forbids `:` in custom job ids.
 */
import { randomBytes } from 'node:crypto';

export function newTaskId(type: string): string {
  return `${type}~${Date.now().toString(36)}${randomBytes(9).toString('base64url')}`;
}

export function typeOfTaskId(id: string): string | undefined {
  const m = /^([a-z][a-z0-9-]{0,62})~[A-Za-z0-9_-]{1,64}$/.exec(id);
  return m?.[1];
}
