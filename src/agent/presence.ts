/**
 * An agent's presence in the registry: registers it, heartbeats its health and load, registers
 * again if the record expired (a long pause, a Redis restart), and reports drain requests.
 */
import type { Logger } from '../config/logger.ts';
import type { AgentRecord } from '../model/agent-record.ts';
import type { HeartbeatReport, Registry, RegistryTiming } from '../registry/registry.ts';

export class Presence {
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #beating: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly record: AgentRecord,
    private readonly timing: RegistryTiming,
    private readonly report: () => HeartbeatReport,
    private readonly onDrain: () => void,
    private readonly log: Logger,
  ) {}

  get draining(): boolean {
    return this.#draining;
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => void this.beat().finally(loop), this.timing.heartbeatMs);
      this.#timer.unref();
    };
    loop();
  }

  /** One heartbeat now (also called on health changes, so the registry hears of them at once). */
  beat(): Promise<void> {
    if (this.#stopped) return Promise.resolve(); // a stopped agent must not register itself again
    this.#beating ??= this.#beat().finally(() => (this.#beating = undefined));
    return this.#beating;
  }

  async #beat(): Promise<void> {
    try {
      const result = await this.registry.heartbeat(this.record.id, this.report(), this.timing);
      if (result === 'gone' && !this.#stopped) {
        this.log.warn('registry record expired (missed heartbeats); registering again');
        await this.registry.register(this.record, this.timing);
        await this.registry.heartbeat(this.record.id, this.report(), this.timing);
      } else if (result === 'draining' && !this.#draining) {
        this.#draining = true;
        this.log.info('drain requested: finishing in-flight tasks, taking no new ones');
        this.onDrain();
      }
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'heartbeat failed (redis unreachable?); retrying');
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#beating;
    await this.registry.deregister(this.record.id).catch(() => undefined);
  }
}
