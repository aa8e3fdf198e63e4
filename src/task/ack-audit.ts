/**
 * The tasks this process acknowledged in the last few seconds, checked against Redis whenever Redis
 * comes back as a new server (its run_id changed: a restart). A Redis that lost acknowledged writes
 * — an AOF fsynced `everysec` that died during a background fsync, or no persistence at all — is
 * then reported by task id, loudly, instead of the tasks vanishing without a word
 * (docs/reliability.md, faults 3 and 4).
 */
import { isCluster, masters, pipelineByKey, type RedisConnection } from '../redis/connection.ts';
import type { Logger } from '../config/logger.ts';
import { keys } from '../redis/keys.ts';
import { parseQueueName } from '../model/names.ts';
import type { PoolQueues } from './pool-queues.ts';

interface Ack {
  at: number;
  queue: string;
  id: string;
}

/** Redis postpones an `everysec` AOF write for up to 2 s while a fsync runs, and fsyncs once a second: 3 s covers both. */
export const AUDIT_WINDOW_MS = 3000;
/**
 * On a cluster a failover is seen only once a replica took over, a cluster-node-timeout (15 s by
 * default) after its master died: the window covers that, and the writes made before it.
 */
export const CLUSTER_AUDIT_WINDOW_MS = 30_000;

export interface AuditResult {
  checked: number;
  lost: Array<{ queue: string; id: string; acknowledgedAt: string }>;
}

export class AckAudit {
  #acks: Ack[] = [];
  #head = 0;
  /** run_id of each server (each master, on a cluster) seen last. */
  #runIds: Set<string> | undefined;
  #checking: Promise<void> | undefined;
  readonly #keys: ReturnType<typeof keys>;
  readonly #onReady = () => void (this.#checking ??= this.#checkServer().finally(() => (this.#checking = undefined)));

  constructor(
    private readonly redis: RedisConnection,
    prefix: string,
    private readonly queues: PoolQueues,
    private readonly log: Logger,
    private readonly windowMs = isCluster(redis) ? CLUSTER_AUDIT_WINDOW_MS : AUDIT_WINDOW_MS,
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

  /**
   * Learns the server's run_id now and audits each time the connection comes back to a different
   * one; on a cluster, each time the client learns the slots anew and a master is a server it had
   * not seen (a replica that took over after a failover, or a restarted master).
   */
  async start(): Promise<void> {
    this.redis.on('ready', this.#onReady);
    if (isCluster(this.redis)) this.redis.on('refresh', this.#onReady);
    if (this.redis.status === 'ready') await this.#checkServer();
  }

  stop(): void {
    this.redis.off('ready', this.#onReady);
    this.redis.off('refresh', this.#onReady);
  }

  async #checkServer(): Promise<void> {
    try {
      const infos = await Promise.all(masters(this.redis).map((n) => n.info('server')));
      const runIds = new Set(infos.map((info) => /^run_id:(\S+)/m.exec(info)?.[1] ?? '?'));
      const seen = this.#runIds;
      this.#runIds = runIds;
      if (!seen || [...runIds].every((id) => seen.has(id))) return;
      const { checked, lost } = await this.audit();
      if (lost.length === 0) {
        this.log.info({ checked }, 'redis restarted or failed over: every task acknowledged in the last seconds before it is still there');
      } else {
        this.log.error(
          { lost: lost.length, checked, tasks: lost.slice(0, 100) },
          `redis restarted or failed over and LOST ${lost.length} acknowledged task(s), acknowledged just before it went down: its AOF was not fsynced before replying (set appendfsync always) or it keeps no AOF; resubmit them (ids in "tasks", the first 100)`,
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
      const keyOf = (a: Ack) => this.#keys.job(a.queue, a.id);
      const exists = await pipelineByKey(this.redis, chunk, keyOf, (pipe, a) => pipe.exists(keyOf(a)));
      chunk.forEach((a, j) => exists[j] === 0 && missing.push(a));
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
