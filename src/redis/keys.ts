/**
 * The only place that spells a Redis key (queue names: model/names.ts). Each pool queue carries its own hash
 * tag (`sw:{transform.premium}:wait`) so a pool's keys stay in one Redis Cluster slot.
 */
import type { PoolRef } from '../model/names.ts';

export function keys(prefix: string) {
  return {
    prefix,
    /** BullMQ's hash of a job (a task) in a queue, by queue name. */
    job: (queue: string, id: string) => `${prefix}:${queue}:${id}`,
    /** Set of every pool queue name ever used, so readers (GET /v1/tasks, Bull Board) find new pools. */
    queueCatalogue: `${prefix}:{catalogue}:queues`,
    /** idempotencyKey -> "<queue name> <task id>" for a type. */
    idempotency: (type: string, key: string) => `${prefix}:idem:{${type}}:${key}`,
    /** The agent registry: every key shares the {registry} tag, so its scripts run on one cluster slot. */
    registry: registryKeys(prefix),
    /** An agent's metrics (prom-client JSON), published every heartbeat; one slot for all, so one MGET reads the fleet. */
    agentMetrics: (agentId: string) => `${prefix}:{metrics}:agent:${agentId}`,
    /** Ids of metrics published under agentMetrics that are not agents' (the lease desks of API processes), for the scrape to find. */
    otherMetrics: `${prefix}:{metrics}:others`,
    /** A throttle key's window: "<queue> <task id>" of the task it holds, for the window. */
    throttle: (type: string, key: string) => `${prefix}:throttle:{${type}}:${key}`,
    /** A debounce key's window: "<queue> <task id>" of the task its requests fold into, until the window ends. */
    debounce: (type: string, key: string) => `${prefix}:debounce:{${type}}:${key}`,
    /**
     * A type's token buckets (GCRA: each its theoretical arrival time) for its limits ratePerType,
     * ratePerPool and ratePerKey; one slot per type, so a task takes from all of them in one call.
     */
    rateBuckets: (type: string) => rateBucketKeys(prefix, type),
    /** A pool held by a handler's RetryAfterError: its agents start nothing until it expires. */
    poolHold: (ref: PoolRef) => `${prefix}:hold:{${ref.type}}:${ref.pool}`,
    /** pub/sub channel: a pool was held (its agents pause at once rather than at their next task). */
    poolHolds: `${prefix}:pool-holds`,
    /** A pool queue's fair order between concurrency keys (lua/fair-tag.lua), in the queue's slot. */
    fairOrder: (queue: string) => `${prefix}:${queue}:_fair`,
    /**
     * A type's concurrency keys (lua/key-slots-lib.lua builds the same names from `base`): each key's
     * slots and held tasks (members `<pool>\t<task id>`), and the zset of keys with held tasks; all in
     * the type's slot.
     */
    keySlots: (type: string) => keySlotKeys(prefix, type),
    /** A client's place in the enqueue rate limit (src/api/rate-limit.ts); one slot per client. */
    rateLimit: (client: string) => `${prefix}:rate:{${client}}`,
    /** What is left of a cancelled task that was removed before it ran (read by GET /v1/tasks/:id). */
    cancelled: (type: string, id: string) => `${prefix}:cancelled:{${type}}:${id}`,
    /**
     * A running task's cancel, kept for workers that hear of it by asking (the HTTP worker protocol's
     * heartbeats and extends); `queue` is its pool queue's name, so a worker's leases share a slot.
     */
    cancelAsked: (queue: string, id: string) => `${prefix}:cancel-asked:${queue}:${id}`,
    /** pub/sub channel telling agents to abort a running task. */
    taskEvents: `${prefix}:task-events`,
    /** The event log (a stream: task and run state changes, GET /v1/events), in a slot of its own. */
    events: `${prefix}:{events}:log`,
    /** lock held by the one API process dispatching parked and stranded tasks. */
    dispatcher: `${prefix}:{routing}:dispatcher`,
    /** Workflow runs: each run's keys share the tag {run:<id>}, so its scripts stay in one cluster slot. */
    workflow: workflowKeys(prefix),
    /** Schedules and their timer. */
    schedules: scheduleKeys(prefix),
    /** Circuit breakers: each one's state and probe permits share its own tag. */
    breaker: breakerKeys(prefix),
  } as const;
}

function workflowKeys(prefix: string) {
  return {
    /** Base key of a run (its meta hash); the scripts derive the run's other keys from it (see lua/workflow-lib.lua). */
    run: (id: string) => `${prefix}:{run:${id}}`,
    /**
     * zset: active run id -> when the engine last looked at it (the sweep picks the stalest). In the
     * slot of the run queue `{workflows}`, under a name no BullMQ key of that queue can take (its
     * own `:active` list is `<prefix>:{workflows}:active`; job ids are run ids, `wf_...`).
     */
    active: `${prefix}:{workflows}:_active-runs`,
    idempotency: (key: string) => `${prefix}:idem:{workflows}:${key}`,
    /** zset: a node's timer ("<run id>\t<node id>": a sleep's wake, a signal's timeout) -> when it is due (ms; a claimed one: when its claim ends). */
    timers: `${prefix}:{workflows}:_timers`,
    /** pub/sub channel: a run id whose state needs the engine (nodes ready, run stopping or finished). */
    events: `${prefix}:workflow-events`,
  } as const;
}

function breakerKeys(prefix: string) {
  return {
    state: (name: string) => `${prefix}:{breaker:${name}}`,
    probes: (name: string) => `${prefix}:{breaker:${name}}:probes`,
    /** Set of every breaker name, for listings. */
    index: `${prefix}:breakers`,
    events: `${prefix}:breaker-events`,
  } as const;
}

function registryKeys(prefix: string) {
  return {
    agent: (id: string) => `${prefix}:{registry}:agent:${id}`,
    /** zset: agent id -> time its record expires unless it heartbeats. */
    expiry: `${prefix}:{registry}:expiry`,
    byType: (type: string) => `${prefix}:{registry}:type:${type}`,
    byPool: (ref: PoolRef) => `${prefix}:{registry}:pool:${ref.type}.${ref.pool}`,
    byCapability: (name: string) => `${prefix}:{registry}:cap:${name}`,
    byTag: (tag: string) => `${prefix}:{registry}:tag:${tag}`,
    /** pub/sub channel of registry and health events. */
    events: `${prefix}:{registry}:events`,
    /** lock held by the one process running housekeeping. */
    housekeeper: `${prefix}:{registry}:housekeeper`,
  } as const;
}

/** Schedules: every key shares the tag {schedules}, so the timer's scripts run on one cluster slot. */
function scheduleKeys(prefix: string) {
  return {
    /** hash: schedule id -> its definition (JSON). */
    defs: `${prefix}:{schedules}:defs`,
    /** hash: schedule id -> its last fire (JSON: tick, when, what it started, or why not). */
    fires: `${prefix}:{schedules}:fires`,
    /** zset: schedule id -> when it was created (ms): the listing's order, read a page at a time. */
    index: `${prefix}:{schedules}:index`,
    /** zset: schedule id -> its next tick (ms); absent while paused, being fired, or ended. */
    due: `${prefix}:{schedules}:due`,
    /** zset: schedule id -> when the claim of the process firing its tick ends (it died if it passes). */
    claims: `${prefix}:{schedules}:claims`,
    /** hash: schedule id -> the tick being fired under its claim. */
    claimTicks: `${prefix}:{schedules}:claim-ticks`,
  } as const;
}

/** Suffixes of a run's keys after its base key `<prefix>:{run:<id>}` (`:order`: node ids in request order, for paging). */
export const RUN_KEY_SUFFIXES = ['', ':defs', ':state', ':info', ':wait', ':next', ':prev', ':results', ':ready', ':undo', ':undo-state', ':undo-wait', ':undo-ready', ':log', ':order', ':signals', ':inbox', ':map', ':map-items', ':map-out'] as const;

export type Keys = ReturnType<typeof keys>;

/** A type's concurrency keys: every one under the type's tag. */
function keySlotKeys(prefix: string, type: string) {
  const base = `${prefix}:conc:{${type}}:`;
  return {
    base,
    heldKeys: `${base}held-keys`,
    /** zset: woken tasks ("<key>\t<pool>\t<id>") not yet promoted -> when another agent promotes them. */
    waking: `${base}waking`,
    slots: (key: string) => `${base}slots:${key}`,
    held: (key: string) => `${base}held:${key}`,
    heldMember: (pool: string, id: string) => `${pool}\t${id}`,
  };
}

/** A type's token buckets: every one under the type's tag. */
function rateBucketKeys(prefix: string, type: string) {
  return {
    type: `${prefix}:rate:{${type}}:type`,
    pool: (pool: string) => `${prefix}:rate:{${type}}:pool:${pool}`,
    key: (key: string) => `${prefix}:rate:{${type}}:key:${key}`,
    /** zset: task id -> the time its key's token is reserved for (rate-take.lua). */
    reservations: `${prefix}:rate:{${type}}:reserved`,
  };
}
