/**
 * Task ids: `<type>~<time><process tag><counter>`. The type prefix lets a reader find the task's
 * pool queues without an index write per task; the time part keeps ids roughly sortable. Ids are
 * unique through a random 48-bit tag drawn once per process plus a counter (a randomBytes call per
 * id cost ~4 µs, most of the producer's own time). `~` cannot occur in a type name, and BullMQ
 * forbids `:` in custom job ids.
 */
import { randomBytes } from 'node:crypto';

const PROCESS_TAG = randomBytes(6).toString('base64url');
let counter = 0;
/** Date.now().toString(36) costs ~0.2 µs: computed once per millisecond, not once per id. */
let stampMs = -1;
let stamp = '';

function unique(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stamp = `${now.toString(36)}${PROCESS_TAG}`;
  }
  return `${stamp}${counter.toString(36)}`;
}

export function newTaskId(type: string): string {
  return `${type}~${unique()}`;
}

/** Workflow run ids: `wf_<unique>` (`_` cannot occur in a type name, so no task id looks like one). */
export function newRunId(): string {
  return `wf_${unique()}`;
}

export const RUN_ID_PATTERN = /^wf_[A-Za-z0-9_-]{1,64}$/;

/** The job of a workflow node, `<runId>.<nodeId>`, or of its compensation, `<runId>.<nodeId>.undo` (the id's suffix, as public as the id). */
export const nodeJobId = (runId: string, node: string, compensation = false): string => `${runId}.${node}${compensation ? '.undo' : ''}`;

/** The job of item `index` of a map node, `<runId>.<nodeId>.<index>`. */
export const itemJobId = (runId: string, node: string, index: number): string => `${runId}.${node}.${index}`;

const NODE_JOB_ID = /^(wf_[A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})(?:(\.undo)|\.(0|[1-9][0-9]{0,4}))?$/;

/** The parts of a node job id (a node's, its compensation's, a map item's), or undefined for any other id. */
export function parseNodeJobId(id: string): { runId: string; node: string; compensation: boolean; item?: number } | undefined {
  const m = NODE_JOB_ID.exec(id);
  if (!m) return undefined;
  return { runId: m[1]!, node: m[2]!, compensation: m[3] !== undefined, ...(m[4] !== undefined ? { item: Number(m[4]) } : {}) };
}

/** The fields every log line about a task carries: its id, and for a workflow node its run and node. */
export function taskLogFields(id: string | undefined): { taskId: string; runId?: string; node?: string } {
  const taskId = id ?? '';
  const n = parseNodeJobId(taskId);
  return n ? { taskId, runId: n.runId, node: n.compensation ? `${n.node} (compensation)` : n.item !== undefined ? `${n.node}[${n.item}]` : n.node } : { taskId };
}

export function typeOfTaskId(id: string): string | undefined {
  const m = /^([a-z][a-z0-9-]{0,62})~[A-Za-z0-9_-]{1,64}$/.exec(id);
  return m?.[1];
}
