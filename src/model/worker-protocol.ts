/**
 * The worker protocol over HTTP (`/v1/workers`): what an agent in any language sends to register,
 * heartbeat, lease tasks, extend its leases and report how they ended. A lease is the task's BullMQ
 * lock token: whoever holds it may extend the lease and commit the task's end, once; an expired lease
 * is taken back (the task runs again elsewhere) and its token refused from then on.
 */
import { z } from 'zod';
import semver from 'semver';
import { NAME_PATTERN, type PoolRef } from './names.ts';
import { TAG_PATTERN } from './agent-record.ts';

const POOL_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** `<type>.<pool>.http-<12 hex>`: a worker's id names its pool, so extends and results read no registry. */
export const workerId = (ref: PoolRef, hex: string): string => `${ref.type}.${ref.pool}.http-${hex}`;
const WORKER_ID = /^([a-z][a-z0-9-]{0,62})\.([a-z0-9][a-z0-9-]{0,62})\.http-[0-9a-f]{12}$/;

/** The pool a worker id names; undefined for what is not a worker id. */
export function workerPool(id: string): PoolRef | undefined {
  const m = WORKER_ID.exec(id);
  return m ? { type: m[1]!, pool: m[2]! } : undefined;
}
/** At most this many leases per lease, extend or results request. */
export const MAX_LEASES_PER_REQUEST = 1000;
/** The longest a lease request may wait for a task (long poll). */
export const MAX_LEASE_WAIT_MS = 30_000;
/** The longest error message kept of a failure a worker reports. */
const MAX_ERROR_CHARS = 10_000;

const METADATA_BYTES = 4096;

/** Small enough to store with the record (a value too deep to serialize is refused here, not in the registry). */
function fitsMetadata(m: Record<string, unknown>): boolean {
  const depth = (v: unknown, d: number): boolean => d <= 16 && (typeof v !== 'object' || v === null || Object.values(v).every((x) => depth(x, d + 1)));
  return depth(m, 1) && JSON.stringify(m).length <= METADATA_BYTES;
}

export const workerRegistrationSchema = z.strictObject({
  type: z.string().regex(NAME_PATTERN, 'an agent type name: lowercase letters, digits and -'),
  /** Defaults to the type's declared version. */
  version: z.string().refine((v) => semver.valid(v) !== null, 'a semver version such as 1.2.0').optional(),
  pool: z.string().regex(POOL_PATTERN, 'lowercase letters, digits and -').default('default'),
  weight: z.number().positive('must be greater than 0').max(1_000_000).default(1),
  tags: z.array(z.string().regex(TAG_PATTERN, 'letters, digits, _ . - (max 64)')).max(32).default([]),
  /** How many tasks it runs at once: a lease request gets at most this many. */
  concurrency: z.number().int().min(1).max(MAX_LEASES_PER_REQUEST).default(1),
  /** Where it runs, for the fleet view. */
  host: z.string().min(1).max(200).optional(),
  /** Anything to show in the fleet view, at most 4 KiB of JSON. */
  metadata: z.record(z.string(), z.unknown()).refine(fitsMetadata, `at most ${METADATA_BYTES} bytes of JSON, nested at most 16 deep`).default({}),
});
export type WorkerRegistration = z.output<typeof workerRegistrationSchema>;

/** A lease the worker holds: its task's id and the lease token it was given. */
export const leaseRefSchema = z.strictObject({ task: z.string().min(1).max(300), lease: z.string().min(1).max(300) });
export type LeaseRef = z.output<typeof leaseRefSchema>;

export const workerHeartbeatSchema = z.strictObject({
  /** The worker's own health verdict (from its checks); the registry says UNKNOWN once heartbeats lapse. */
  health: z.enum(['HEALTHY', 'DEGRADED', 'UNHEALTHY']),
  reason: z.string().max(500).optional(),
  /** Tasks it runs now. */
  running: z.number().int().min(0).default(0),
  responseTimeMs: z.number().min(0).optional(),
  /** The leases it holds: each is extended, and answered `cancelled` when its task was cancelled. */
  leases: z.array(leaseRefSchema).max(MAX_LEASES_PER_REQUEST).default([]),
});
export type WorkerHeartbeat = z.output<typeof workerHeartbeatSchema>;

export const leaseRequestSchema = z.strictObject({
  /** Up to this many tasks (capped at the worker's concurrency). */
  max: z.number().int().min(1).max(MAX_LEASES_PER_REQUEST).default(1),
  /** Wait up to this long for a first task (long poll); 0 answers at once. */
  waitMs: z.number().int().min(0).max(MAX_LEASE_WAIT_MS).default(0),
});
export type LeaseRequest = z.output<typeof leaseRequestSchema>;

export const extendRequestSchema = z.strictObject({ leases: z.array(leaseRefSchema).min(1).max(MAX_LEASES_PER_REQUEST) });

export const RETRY_KINDS = ['retryable', 'fatal'] as const;

export const taskOutcomeSchema = z.discriminatedUnion('status', [
  leaseRefSchema.extend({ status: z.literal('completed'), result: z.unknown().optional() }),
  leaseRefSchema.extend({
    status: z.literal('failed'),
    error: z.string().min(1).max(MAX_ERROR_CHARS),
    /** retryable (the default): retried with the task's backoff while attempts remain; fatal: dead at once. */
    retry: z.enum(RETRY_KINDS).default('retryable'),
    /** Retry after exactly this long (a downstream's Retry-After); the whole pool starts nothing meanwhile. */
    retryAfterMs: z.number().int().min(0).max(24 * 3600_000).optional(),
  }),
]);
export type TaskOutcome = z.output<typeof taskOutcomeSchema>;

export const resultsRequestSchema = z.strictObject({ results: z.array(taskOutcomeSchema).min(1).max(MAX_LEASES_PER_REQUEST) });

/** What became of a lease a heartbeat or extend named. */
export const LEASE_STATES = ['extended', 'cancelled', 'lost', 'timeout'] as const;
export type LeaseState = (typeof LEASE_STATES)[number];

/**
 * What became of a reported end: `completed`; `retrying` (attempts remain); `dead` (fatal, its
 * attempts spent, or a result that failed the type's result schema); `conflict` (the lease was lost:
 * nothing was written).
 */
export const COMMIT_STATES = ['completed', 'retrying', 'dead', 'conflict'] as const;
export type CommitState = (typeof COMMIT_STATES)[number];

/** What a heartbeat or an extend answers of each lease named. */
export const leaseStateSchema = leaseRefSchema.extend({ state: z.enum(LEASE_STATES) });

/** What a registration answers. */
export const registeredWorkerSchema = z.strictObject({
  id: z.string().min(1), type: z.string().min(1), pool: z.string().min(1), concurrency: z.number().int().min(1), weight: z.number().positive(),
  /** Heartbeat this often; a worker silent for ttlMs is removed from the registry. */
  heartbeatMs: z.number().int().positive(), ttlMs: z.number().int().positive(), leaseMs: z.number().int().positive(),
});
export type RegisteredWorker = z.output<typeof registeredWorkerSchema>;

/** A task handed to a worker. */
export const leaseSchema = z.strictObject({
  task: z.string().min(1), lease: z.string().min(1), type: z.string().min(1), payload: z.unknown(),
  attempt: z.number().int().min(1), maxAttempts: z.number().int().min(1), idempotencyKey: z.string(),
  timeoutMs: z.number().int().positive(), deadline: z.number().int().describe('ms since the epoch: past it the attempt has timed out'),
  leaseMs: z.number().int().positive().describe('extend the lease before this long has passed'),
  deps: z.record(z.string(), z.unknown()).optional(),
  workflow: z.strictObject({ runId: z.string(), nodeId: z.string(), compensating: z.boolean(), item: z.number().int().optional() }).optional(),
  traceparent: z.string().optional().describe("the W3C trace context of the span that enqueued the task: the worker's spans join its trace"),
  tracestate: z.string().optional(),
});
export type Lease = z.output<typeof leaseSchema>;
