/** How a task looks from outside: its state in Switchyard's words, built from its BullMQ job. */
import type { Job, JobState } from 'bullmq';
import { PARKED_POOL, parseQueueName } from '../model/names.ts';
import { expandDecision, type RoutingDecision } from '../model/routing.ts';
import type { TaskEnvelope } from '../model/task-envelope.ts';
import { progressOf, type TaskProgress } from '../model/task-progress.ts';

export const TASK_STATES = ['parked', 'waiting', 'delayed', 'active', 'completed', 'retrying', 'dead', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** failedReason of a task aborted on request: such a task is `cancelled`, not dead. */
export const CANCELLED_PREFIX = 'cancelled: ';

/** What a failed attempt's event says: `failed` (it will retry), else `cancelled` or `dead` (BullMQ set finishedOn: it left for good). */
export const failedEventState = (job: Job): 'failed' | 'cancelled' | 'dead' =>
  !job.finishedOn ? 'failed' : job.failedReason?.startsWith(CANCELLED_PREFIX) ? 'cancelled' : 'dead';

export interface TaskSummary {
  id: string;
  type: string;
  pool: string;
  state: TaskState;
  routing: RoutingDecision;
}

export interface TaskView extends TaskSummary {
  /** Why the task is in its state, when that is not obvious (e.g. no live agent). */
  note?: string;
  /** made: attempts that ended (failed or completed); started: runs begun, including ones whose agent died or lost the task. */
  attempts: { made: number; max: number; started: number };
  priority: number;
  idempotencyKey?: string;
  payload: unknown;
  /** What the handler last reported with ctx.progress() (absent until it reports one other than 0). */
  progress?: TaskProgress;
  result?: unknown;
  /** The last error, and one entry per failed attempt (newest last). */
  error?: string;
  errors: string[];
  /** Errors from before the task was replayed from the dead letters. */
  previousErrors?: string[];
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** For delayed and retrying tasks: when it becomes ready. */
  runAt?: string;
  agent?: string;
  /** Set when the task is a workflow node (or a node's compensation). */
  workflow?: { runId: string; nodeId: string; compensating: boolean };
}

type TaskJob = Job<TaskEnvelope>;

/**
 * BullMQ state -> task state. `retrying` means "an attempt failed and a retry is scheduled";
 * BullMQ's final `failed` is our `dead` (attempts exhausted or fatal: the dead-letter set).
 */
export function taskState(job: TaskJob, state: JobState | 'unknown'): TaskState | undefined {
  switch (state) {
    case 'completed':
      return 'completed';
    case 'failed':
      return job.failedReason?.startsWith(CANCELLED_PREFIX) ? 'cancelled' : 'dead';
    case 'active':
      return 'active';
    case 'delayed':
      return job.attemptsMade > 0 && job.failedReason ? 'retrying' : 'delayed';
    case 'waiting':
    case 'prioritized':
    case 'waiting-children':
      if (job.queueName.endsWith(`.${PARKED_POOL}}`)) return 'parked';
      return job.attemptsMade > 0 && job.failedReason ? 'retrying' : 'waiting';
    default:
      return undefined;
  }
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? text;
  return line.replace(/^(UnrecoverableError|Error): /, '');
}

export function summaryOf(job: TaskJob, state: TaskState): TaskSummary {
  const ref = parseQueueName(job.queueName);
  return {
    id: job.id ?? '',
    type: ref?.type ?? job.name,
    pool: ref?.pool ?? '',
    state,
    routing: expandDecision(job.data.routing, ref?.pool ?? ''),
  };
}

export function viewOf(job: TaskJob, state: TaskState): TaskView {
  const errors = (job.stacktrace ?? []).filter(Boolean).map(firstLine);
  const view: TaskView = {
    ...summaryOf(job, state),
    attempts: { made: job.attemptsMade, max: job.opts.attempts ?? 1, started: job.attemptsStarted ?? job.attemptsMade },
    priority: job.opts.priority ?? 0,
    payload: job.data.payload,
    errors,
    createdAt: iso(job.timestamp) ?? new Date(0).toISOString(),
  };
  if (job.data.key) view.idempotencyKey = job.data.key;
  if (job.data.previousErrors?.length) view.previousErrors = job.data.previousErrors;
  const progress = progressOf(job.progress);
  if (progress !== undefined) view.progress = progress;
  if (state === 'completed') view.result = job.returnvalue;
  if (job.failedReason) view.error = firstLine(job.failedReason);
  if (view.error && errors.length === 0) view.errors = [view.error];
  const started = iso(job.processedOn);
  if (started) view.startedAt = started;
  const finished = iso(job.finishedOn);
  if (finished && (state === 'completed' || state === 'dead' || state === 'cancelled')) view.finishedAt = finished;
  if ((state === 'delayed' || state === 'retrying') && job.delay > 0) view.runAt = iso(job.timestamp + job.delay);
  if (job.processedBy) view.agent = job.processedBy;
  const w = job.data.workflow;
  if (w) view.workflow = { runId: w.run, nodeId: w.node, compensating: w.undo === true };
  return view;
}
