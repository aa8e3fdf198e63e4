/**
 * A task request's checks against the catalogue, for requests checked in full before anything is
 * written (a workflow's task nodes, a schedule's task): its options go together, its type is declared,
 * its payload fits the type's schema, its backoff overrides combine with the type's. Issues are pushed, paths under `base`.
 */
import type { Catalogue } from './catalogue.ts';
import type { AgentType } from './agent-type.ts';
import { backoffSchema } from './backoff.ts';
import type { FieldIssue } from './errors.ts';
import { optionsConflict, type TaskRequest } from './task-request.ts';
import { toFieldIssues } from './validation.ts';

/** Checks `task` (already of the request's shape); returns its type, and the payload as the type's schema read it. */
export function checkTaskRequest(
  task: Pick<TaskRequest, 'type' | 'payload' | 'backoff'> & Parameters<typeof optionsConflict>[0],
  base: string,
  catalogue: Catalogue,
  issues: FieldIssue[],
): { type: AgentType; payload: unknown } | undefined {
  const type = checkTaskOptions(task, base, catalogue, issues);
  if (!type) return undefined;
  const payload = type.payload.safeParse(task.payload);
  if (!payload.success) return void issues.push(...toFieldIssues(payload.error, `${base}.payload`));
  return { type, payload: payload.data };
}

/** A task's options without its payload (a map node's items come at run time): they go together, the type is declared, the backoff combines with the type's. */
export function checkTaskOptions(
  task: Pick<TaskRequest, 'type' | 'backoff'> & Parameters<typeof optionsConflict>[0],
  base: string,
  catalogue: Catalogue,
  issues: FieldIssue[],
): AgentType | undefined {
  const conflict = optionsConflict(task);
  if (conflict) issues.push({ path: `${base}.${conflict.path}`, message: conflict.message });
  const type = catalogue.find(task.type);
  if (!type) return void issues.push({ path: `${base}.type`, message: `unknown agent type ${JSON.stringify(task.type)}; declared: ${catalogue.names.join(', ')}` });
  // A backoff the producer would refuse (its type's, overridden field by field) would fail every later enqueue.
  if (task.backoff) {
    const backoff = backoffSchema.safeParse({ ...type.defaults.backoff, ...task.backoff });
    if (!backoff.success) issues.push(...toFieldIssues(backoff.error, `${base}.backoff`));
  }
  return type;
}
