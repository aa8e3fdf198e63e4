/**
 * The tasks this process acknowledged in the last few seconds, checked against Redis whenever Redis
 * comes back as a new server (its run_id changed: a restart). A Redis that lost acknowledged writes
 * — an AOF fsynced `everysec` that died during a background fsync, or no persistence at all — is
 * then reported by task id, loudly, instead of the tasks vanishing without a word
 * (docs/reliability.md, faults 3 and 4).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { keys, parseQueueName } from '../redis/keys.ts';
import type { PoolQueues } from './pool-queues.ts';

interface Ack {
  at: number;
  queue: string;
  id: string;
}

/** Redis postpones an `everysec` AOF write for up to 2 s while a fsync runs, and fsyncs once a second: 3 s covers both. */
export const AUDIT_WINDOW_MS = 3000;

export interface AuditResult {
  checked: number;
  lost: Array<{ queue: string; id: string; acknowledgedAt: string }>;
}

export class AckAudit {
  #acks: Ack[] = [];
  #head = 0;
  #runId: string | undefined;
  readonly #keys: ReturnType<typeof keys>;
  readonly #onReady = () => void this.#checkServer();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly queues: PoolQueues,
    private readonly log: Logger,
    private readonly windowMs = AUDIT_WINDOW_MS,
    /** A bound on memory whatever the rate: the oldest acknowledgements go first. */
    private readonly maxAcks = 200_000,
  ) {
    this.#keys = keys(prefix);
  }

  /** Remembers tasks acknowledged in one queue, forgetting those older than the window. */
  record(queue: string, ids: readonly string[], now = Date.now()): void {
    for (const id of ids) this.#acks.push({ at: now, queue, id });
    while (this.#head < this.#acks.length && (this.#acks[this.#head]!.at < now - this.windowMs || this.#acks.length - this.#head > this.maxAcks)) this.#head++;
    if (this.#head > 4096 && this.#head * 2 > this.#acks.length) {
      this.#acks = this.#acks.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Learns the server's run_id now and audits each time the connection comes back to a different one. */
  async start(): Promise<void> {
    this.redis.on('ready', this.#onReady);
    if (this.redis.status === 'ready') await this.#checkServer();
  }

  stop(): void {
    this.redis.off('ready', this.#onReady);
  }

  async #checkServer(): Promise<void> {
    try {
      const info = await this.redis.info('server');
      const runId = /^run_id:(\S+)/m.exec(info)?.[1];
      const restarted = this.#runId !== undefined && runId !== this.#runId;
      this.#runId = runId;
      if (!restarted) return;
      const { checked, lost } = await this.audit();
      if (lost.length === 0) {
        this.log.info({ checked }, 'redis restarted: every task acknowledged in the last seconds before it is still there');
      } else {
        this.log.error(
          { lost: lost.length, checked, tasks: lost.slice(0, 100) },
          `redis restarted and LOST ${lost.length} acknowledged task(s), acknowledged just before it went down: its AOF was not fsynced before replying (set appendfsync always) or it keeps no AOF; resubmit them (ids in "tasks", the first 100)`,
        );
      }
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not audit acknowledged tasks after a redis restart');
    }
  }

  /** Which remembered acknowledgements Redis no longer holds (looked for in every pool: a task may have moved). */
  async audit(): Promise<AuditResult> {
    const acks = this.#acks.slice(this.#head);
    const missing: Ack[] = [];
    for (let i = 0; i < acks.length; i += 1000) {
      const chunk = acks.slice(i, i + 1000);
      const pipe = this.redis.pipeline();
      for (const a of chunk) pipe.exists(this.#keys.job(a.queue, a.id));
      const replies = (await pipe.exec()) ?? [];
      chunk.forEach((a, j) => replies[j]?.[1] === 0 && missing.push(a));
    }
    const lost: AuditResult['lost'] = [];
    for (const a of missing) {
      const ref = parseQueueName(a.queue);
      if (ref && (await this.queues.find(ref.type, a.id))) continue;
      lost.push({ queue: a.queue, id: a.id, acknowledgedAt: new Date(a.at).toISOString() });
    }
    return { checked: acks.length, lost };
  }
}
