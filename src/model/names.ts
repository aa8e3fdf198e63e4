/**
 * Names Switchyard gives things outside Redis keys: agent types and pools, the BullMQ queue of a pool
 * (with its hash tag), the workflow queues, a pool's breaker. Pure: redis/keys.ts spells the keys.
 */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

export interface PoolRef {
  type: string;
  pool: string;
}

/** BullMQ queue name of a pool: the braces make it the hash tag of every key of that queue. */
export function queueName({ type, pool }: PoolRef): string {
  return `{${type}.${pool}}`;
}

/** The holding queue of a type's tasks that no pool may take yet (not a pool: no agent pulls from it). */
export const PARKED_POOL = '_parked';

export function parseQueueName(name: string): PoolRef | undefined {
  const m = /^\{([a-z][a-z0-9-]*)\.([a-z0-9][a-z0-9-]*|_parked)\}$/.exec(name);
  return m ? { type: m[1]!, pool: m[2]! } : undefined;
}

/** Human name of a pool, as shown in logs, Bull Board and the API. */
export const poolLabel = ({ type, pool }: PoolRef): string => `${type}.${pool}`;

/** A queue's name without the braces of its hash tag (`{workflows}` shows as `workflows`). */
export const queueLabel = (name: string): string => name.replace(/^\{([^}]*)\}/, '$1');

/**
 * BullMQ queue of workflow run jobs: each waits in the delayed set (for RUN_JOB_HOLD_MS at most)
 * until the engine promotes it when its run ends. Node jobs are not children of the run job (they
 * live in pool queues, other slots): the run's own keys ({run:<id>}) track its nodes. The gates
 * queue held the run jobs of runs started by older versions open (a run job was a flow parent of its
 * gate); the engine still removes those gates.
 */
export const WORKFLOW_QUEUE = '{workflows}';
export const GATE_QUEUE = '{workflows}.gates';
/** BullMQ queue of completion callbacks to deliver (src/callbacks/): retried with backoff, dead ones kept in its failed set. */
export const CALLBACK_QUEUE = '{callbacks}';
/**
 * How long a run job waits before it is looked at anyway (a run still going waits again: for 10 000
 * day-long runs, about one look a second). Seven digits, so the job's options (its id, this delay)
 * stay within the 64 bytes that keep Redis's encoding of its hash compact: 300 bytes less per run.
 */
export const RUN_JOB_HOLD_MS = 2 * 3_600_000;

/** The breaker that guards a pool. */
export const poolBreakerName = (ref: PoolRef): string => `pool:${ref.type}.${ref.pool}`;
