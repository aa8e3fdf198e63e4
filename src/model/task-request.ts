/** The shape of a task request (HTTP body, client call), validated before anything is written. */
import semver from 'semver';
import { z } from 'zod';
import { STRATEGIES } from './routing.ts';
import { NAME_PATTERN } from './names.ts';
import { callbackSchema } from './callback.ts';

/** The highest priority BullMQ accepts (its PRIORITY_LIMIT, 2^21 - 1; tests/unit/names.test.ts holds them equal). */
export const PRIORITY_LIMIT = 2 ** 21 - 1;

export const poolName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and - (max 63)');

/**
 * How deep a payload may nest. Deeper JSON overflows the stack where it is serialised (BullMQ's
 * job add, the workflow run store) and would answer 500 after part of a run was written.
 */
export const MAX_PAYLOAD_DEPTH = 128;

/** True when `value` nests objects or arrays more than `max` levels deep (iterative: any depth is safe to check). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [v, depth] = next;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** A throttle or debounce key: any text up to 256 bytes (a tenant, a document id). */
export const flowKeySchema = z.string().min(1).refine((k) => new TextEncoder().encode(k).length <= 256, 'at most 256 bytes');

/** A task's payload: any JSON, checked for its shape by its type's schema, but not nested without bound. */
export const payloadSchema = z.unknown().refine((v) => !nestsDeeperThan(v, MAX_PAYLOAD_DEPTH), `nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);

export const taskRequestSchema = z.strictObject({
  type: z.string().regex(NAME_PATTERN, 'an agent type name: lowercase letters, digits and -'),
  payload: payloadSchema,
  /** BullMQ refuses more than PRIORITY_LIMIT (2^21 - 1) when the job is added. */
  priority: z.number().int().min(0).max(PRIORITY_LIMIT).optional(),
  delayMs: z.number().int().min(0).max(31_536_000_000).optional(),
  attempts: z.number().int().min(1).max(100).optional(),
  /** Overrides of the type's retry policy, field by field. */
  backoff: z.strictObject({
    type: z.enum(['exponential', 'linear', 'fixed']).optional(),
    delayMs: z.number().int().min(0).max(86_400_000).optional(),
    factor: z.number().min(1).max(100).optional(),
    maxDelayMs: z.number().int().min(0).max(7 * 86_400_000).optional(),
    jitter: z.number().min(0).max(1).optional(),
  }).optional(),
  timeoutMs: z.number().int().min(1).max(86_400_000).optional(),
  pool: poolName.optional(),
  tags: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (max 64)')).max(32).optional(),
  strategy: z.enum(STRATEGIES).optional(),
  /** Only agents whose version of the type satisfies this semver range, e.g. "^1.2". */
  version: z.string().refine((v) => semver.validRange(v) !== null, 'must be a semver range such as ^1.2').optional(),
  idempotencyKey: z.string().regex(/^[\x21-\x7e]{1,200}$/, '1-200 printable ASCII characters, no spaces').optional(),
  /** At most one task per key and window: a request while one is kept for the window gets that task back. */
  throttle: z.strictObject({ key: flowKeySchema, windowMs: z.number().int().min(1).max(86_400_000) }).optional(),
  /** One task for the last request of a burst: it runs `windowMs` after the last request with its key, with that request's payload. */
  debounce: z.strictObject({ key: flowKeySchema, windowMs: z.number().int().min(1).max(86_400_000) }).optional(),
  /** A tenant, a customer: tasks with keys take turns between keys (fair order), and run at most `concurrencyLimit` at once per key. */
  concurrencyKey: flowKeySchema.optional(),
  /** Tasks of this key running at once, across every agent and pool of the type; overrides the type's limits.concurrencyPerKey. */
  concurrencyLimit: z.number().int().min(1).max(100_000).optional(),
  /** Where Switchyard POSTs the task's final view when it ends (model/callback.ts). */
  callback: callbackSchema.optional(),
});

/** The per-task options a workflow node or a schedule's task does not take (they hold for one lone request). */
export const LONE_TASK_OPTIONS = { idempotencyKey: true, delayMs: true, throttle: true, debounce: true, callback: true } as const;

/** What a workflow node does not take yet besides those: a concurrency key (its fair order is worked out where lone tasks are written). */
export const KEYED_TASK_OPTIONS = { concurrencyKey: true, concurrencyLimit: true } as const;

/** Why a task request's options do not go together, or undefined. */
export function optionsConflict(req: Pick<TaskRequest, 'throttle' | 'debounce' | 'delayMs' | 'idempotencyKey' | 'concurrencyKey' | 'concurrencyLimit' | 'priority'>): { path: string; message: string } | undefined {
  if (req.concurrencyLimit !== undefined && req.concurrencyKey === undefined) return { path: 'concurrencyLimit', message: 'a limit per key needs a concurrencyKey' };
  if (req.concurrencyKey !== undefined && req.priority !== undefined) return { path: 'priority', message: 'tasks with a concurrencyKey take turns between keys (their order is the key\'s): no priority with one' };
  if (req.throttle && req.debounce) return { path: 'debounce', message: 'give throttle or debounce, not both' };
  if (req.debounce && req.delayMs !== undefined) return { path: 'delayMs', message: 'a debounced task runs debounce.windowMs after the last request: no delayMs' };
  if ((req.throttle || req.debounce) && req.idempotencyKey) return { path: 'idempotencyKey', message: 'throttle and debounce already answer repeated requests: no idempotencyKey with them' };
  return undefined;
}

export type TaskRequest = z.output<typeof taskRequestSchema>;

export const batchRequestSchema = z.strictObject({
  tasks: z.array(z.unknown()).min(1, 'at least one task'),
});
