/**
 * GET /metrics (prom-client text format): the API process's own counts (tasks enqueued, HTTP
 * request durations, Node's process metrics), gauges read at scrape time (tasks per pool and state,
 * agents by health, breaker states, workflow runs), and the fleet's task counts, which each agent
 * publishes to Redis (agent-metrics.ts) and this sums over the live agents. One scrape of any API
 * process sees the whole fleet.
 */
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import type { RedisConnection } from '../redis/connection.ts';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BreakerState } from '../model/breaker-state.ts';
import { keys } from '../redis/keys.ts';
import { parseQueueName } from '../model/names.ts';
import { RedisUnavailableError } from '../model/errors.ts';
import type { Registry as AgentRegistry } from '../registry/registry.ts';
import type { PoolQueues } from '../task/pool-queues.ts';

export interface ApiMetricsDeps {
  /** A connection for the scrape's reads (the API's background one: it waits out outages). */
  redis: RedisConnection;
  prefix: string;
  queues: PoolQueues;
  agents: AgentRegistry;
  /** Every breaker's cached state, by name (`pool:<type>.<pool>` for pool breakers). */
  breakers: () => Map<string, BreakerState>;
  /** The workflow runs' queue (one job per run). */
  runQueue?: () => Queue;
  /** Schedules in all, and those with a next tick (the others are paused or ended). */
  schedules?: () => Promise<{ total: number; scheduled: number }>;
  /** Event streams (GET /v1/events) this process serves now. */
  eventStreams?: () => number;
}

const BREAKER_VALUE: Record<BreakerState, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 };
const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed'] as const;
/** BullMQ's final `failed` is Switchyard's `dead`; its `delayed` holds delayed and retrying tasks. */
const STATE_LABEL: Record<(typeof QUEUE_STATES)[number], string> = { waiting: 'waiting', prioritized: 'prioritized', active: 'active', delayed: 'delayed', failed: 'dead', completed: 'completed' };

const REDIS_UP = '# HELP switchyard_redis_up Whether this API process reached Redis for this scrape (1) or not (0)\n# TYPE switchyard_redis_up gauge\nswitchyard_redis_up ';

export class ApiMetrics {
  readonly registry = new Registry();
  readonly #enqueued: Counter;
  readonly #http: Histogram;
  readonly #agents: Gauge;
  readonly #fires: Counter;
  readonly #fireDelay: Histogram;
  readonly #callbacks: Counter;

  constructor(private readonly d: ApiMetricsDeps) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'switchyard_api_' });
    this.#enqueued = new Counter({ name: 'switchyard_tasks_enqueued_total', help: 'Tasks enqueued through the task API by this API process (workflow nodes not included; pool "_parked": no eligible pool yet)', labelNames: ['type', 'pool'], registers });
    this.#http = new Histogram({
      name: 'switchyard_http_request_duration_seconds',
      help: 'HTTP requests answered by this API process',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    new Gauge({
      name: 'switchyard_queue_tasks',
      help: 'Tasks in each pool queue by state (waiting, prioritized, active, delayed: delayed or retrying, dead, completed)',
      labelNames: ['type', 'pool', 'state'],
      registers,
      collect: async function (this: Gauge) {
        this.reset();
        await Promise.all(
          d.queues.all().map(async ({ queue, ref }) => {
            const counts = await queue.getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) this.set({ type: ref.type, pool: ref.pool, state: STATE_LABEL[state] }, counts[state] ?? 0);
          }),
        );
      },
    });
    // Set by metrics(), from the one registry read each scrape makes (it also finds the agents' published counts).
    this.#agents = new Gauge({ name: 'switchyard_agents', help: 'Live agents by type, pool and health', labelNames: ['type', 'pool', 'health'], registers });
    breakerGauge(d, registers);
    if (d.runQueue) workflowGauge(d.runQueue, registers);
    if (d.schedules) scheduleGauge(d.schedules, registers);
    if (d.eventStreams) {
      const streams = d.eventStreams;
      new Gauge({ name: 'switchyard_event_streams', help: 'Event streams (GET /v1/events) this API process serves now', registers, collect: function (this: Gauge) { this.set(streams()); } });
    }
    this.#callbacks = new Counter({ name: 'switchyard_callbacks_total', help: 'Completion callback attempts by this API process: delivered (a 2xx), retrying (an attempt failed; another follows), dead (every attempt failed: kept in the {callbacks} queue)', labelNames: ['outcome'], registers });
    this.#fires = new Counter({ name: 'switchyard_schedule_fires_total', help: 'Schedule ticks handled by this API process: fired (started its task or run), skipped (misfire: skip), failed (what it starts no longer validates)', labelNames: ['outcome'], registers });
    this.#fireDelay = new Histogram({
      name: 'switchyard_schedule_fire_delay_seconds',
      help: 'From a tick to its task or run being started, for ticks this API process fired',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
  }

  /** Counts a schedule tick this process handled, and how late its fire was. */
  scheduleFired(outcome: 'fired' | 'skipped' | 'failed', delayMs: number): void {
    this.#fires.inc({ outcome });
    if (outcome === 'fired') this.#fireDelay.observe(Math.max(0, delayMs) / 1000);
  }

  /** Counts a callback delivery attempt's outcome. */
  callback(outcome: 'delivered' | 'retrying' | 'dead'): void {
    this.#callbacks.inc({ outcome });
  }

  /** Counts tasks written to a pool queue (by its BullMQ name). */
  enqueued(queueName: string, n: number): void {
    const ref = parseQueueName(queueName);
    if (ref) this.#enqueued.inc({ type: ref.type, pool: ref.pool }, n);
  }

  /** Times every request, labelled by its route pattern (not its path: ids would make a series each). */
  readonly http: RequestHandler = (req, res, next) => {
    if (req.path === '/v1/events') return next(); // a stream lasts as long as its client listens: not a request time
    const end = this.#http.startTimer();
    res.once('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : req.baseUrl || 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * What GET /metrics answers: `read` (metrics() behind the Redis deadline) with `switchyard_redis_up 1`,
   * or, while Redis does not answer, only `switchyard_redis_up 0`: a scrape that succeeds, so an alert
   * tells Redis being unreachable from the API process being gone (dashboard/alerts.yml).
   */
  async scrape(read: () => Promise<string>): Promise<string> {
    try {
      return `${await read()}\n${REDIS_UP}1\n`;
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
      return `${REDIS_UP}0\n`;
    }
  }

  /** The text Prometheus scrapes: this process's metrics and the fleet's, summed over live agents. */
  async metrics(): Promise<string> {
    const agents = await this.d.agents.list();
    this.#agents.reset();
    for (const a of agents) this.#agents.inc({ type: a.type, pool: a.pool, health: a.health });
    const k = keys(this.d.prefix);
    // The fleet's counts: each live agent's, and those of the API processes' lease desks (the HTTP workers' tasks).
    const others = await this.d.redis.smembers(k.otherMetrics);
    const ids = [...agents.map((a) => a.id), ...others];
    const published = ids.length ? await this.d.redis.mget(...ids.map((id) => k.agentMetrics(id))) : [];
    const gone = others.filter((_, i) => published[agents.length + i] == null);
    if (gone.length > 0) await this.d.redis.srem(k.otherMetrics, ...gone);
    const fleet = published.flatMap((json) => {
      if (!json) return [];
      try {
        return [JSON.parse(json) as Parameters<typeof AggregatorRegistry.aggregate>[0][number]];
      } catch {
        return [];
      }
    });
    const own = await this.registry.metrics();
    if (fleet.length === 0) return own;
    return `${own}\n${await AggregatorRegistry.aggregate(fleet).metrics()}`;
  }
}

function breakerGauge(d: ApiMetricsDeps, registers: Registry[]): void {
  new Gauge({
    name: 'switchyard_breaker_state',
    help: 'Circuit breaker of each pool: 0 CLOSED, 1 HALF_OPEN, 2 OPEN',
    labelNames: ['type', 'pool'],
    registers,
    collect: function (this: Gauge) {
      this.reset();
      for (const [name, state] of d.breakers()) {
        const ref = name.startsWith('pool:') ? parseQueueName(`{${name.slice(5)}}`) : undefined;
        if (ref) this.set({ type: ref.type, pool: ref.pool }, BREAKER_VALUE[state]);
      }
    },
  });
}

function workflowGauge(runQueue: () => Queue, registers: Registry[]): void {
  new Gauge({
    name: 'switchyard_workflow_runs',
    help: 'Workflow runs kept: running (waiting on their nodes) and finished (completed: succeeded, or ended by compensation or cancel)',
    labelNames: ['state'],
    registers,
    collect: async function (this: Gauge) {
      const c = await runQueue().getJobCounts('waiting-children', 'waiting', 'active', 'completed', 'failed');
      this.set({ state: 'running' }, (c['waiting-children'] ?? 0) + (c.waiting ?? 0) + (c.active ?? 0));
      this.set({ state: 'finished' }, (c.completed ?? 0) + (c.failed ?? 0));
    },
  });
}

function scheduleGauge(read: () => Promise<{ total: number; scheduled: number }>, registers: Registry[]): void {
  new Gauge({
    name: 'switchyard_schedules',
    help: 'Schedules: scheduled (a next tick is due or being fired) and idle (paused or ended)',
    labelNames: ['state'],
    registers,
    collect: async function (this: Gauge) {
      const { total, scheduled } = await read();
      this.set({ state: 'scheduled' }, scheduled);
      this.set({ state: 'idle' }, Math.max(0, total - scheduled));
    },
  });
}
