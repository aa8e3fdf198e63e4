/**
 * The one place that reads process.env. Every setting is declared here once, with its default,
 * validated by zod at start; a bad value stops the process with a message naming the variable.
 */
import { z } from 'zod';
import { SwitchyardError } from '../model/errors.ts';
import { CLUSTER_URL, clusterUrl, parseClusterUrl } from './redis-url.ts';
import type { ReplicaWait } from './redis-url.ts';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from '../model/health-policy.ts';

/** How long the event log keeps events by default (SWITCHYARD_EVENTS_RETENTION_MS). */
export const DEFAULT_EVENTS_RETENTION_MS = 300_000;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((s) => s.split(',').map((k) => k.trim()).filter((k) => k.length > 0));
/** A DNS name, an IPv4 address, or an IPv6 address in brackets; no port. */
const HOST_NAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])$/;

/** A `redis+cluster://` URL whose nodes createRedis can use, or an issue saying which node is wrong. */
function checkClusterUrl(url: string, ctx: z.RefinementCtx): void {
  try {
    parseClusterUrl(url);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
  }
}

export const envSchema = z.object({
  REDIS_URL: z
    .string()
    .superRefine((u, ctx) => {
      if (CLUSTER_URL.test(u)) return checkClusterUrl(u, ctx);
      if (!z.url({ protocol: /^rediss?$/ }).safeParse(u).success) ctx.addIssue({ code: 'custom', message: 'must be a redis://, rediss:// or redis+cluster://host:port,host:port URL' });
    })
    .optional(),
  /** Seed nodes of a Redis Cluster (`host:port,host:port`); the same as REDIS_URL=redis+cluster://host:port,host:port. */
  REDIS_CLUSTER_NODES: list
    .pipe(z.array(z.string().regex(/^[^\s,/:]+:\d{1,5}$/, 'each node must be host:port')).min(1))
    .superRefine((nodes, ctx) => checkClusterUrl(clusterUrl(nodes), ctx))
    .optional(),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65535).default(3000),
  SWITCHYARD_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - only (1-32 characters)')
    .default('sw'),
  SWITCHYARD_API_KEYS: list.default([]),
  /** A JSON file of scoped, hashed API keys (src/model/api-key.ts), read at start and on SIGHUP. */
  SWITCHYARD_API_KEYS_FILE: z.string().min(1).optional(),
  /**
   * Without API keys only these Host names are answered, besides localhost and loopback addresses (any
   * port): a page whose name an attacker re-points at 127.0.0.1 (DNS rebinding) is refused with 421.
   */
  SWITCHYARD_ALLOWED_HOSTS: list.pipe(z.array(z.string().regex(HOST_NAME, 'each entry must be a host name or IP address without a port, e.g. switchyard.internal'))).default([]),
  /** Open HTTP connections the API holds in all (net.Server maxConnections); more are closed at once. */
  SWITCHYARD_MAX_CONNECTIONS: int(1, 1_000_000).default(4096),
  /** Open HTTP connections from one remote address; more get a 429 and are closed (raise it behind a proxy). */
  SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS: int(1, 1_000_000).default(256),
  /** A connection must send a complete request head this soon after it opens or its last request (408, closed). */
  SWITCHYARD_HEADERS_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** A whole request (head and body) must arrive within this (408, closed). */
  SWITCHYARD_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  /** An idle keep-alive connection is closed after this; longer than the 60 s idle timeout of common load balancers. */
  SWITCHYARD_KEEP_ALIVE_TIMEOUT_MS: int(100, 600_000).default(65_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: z.enum(['auto', 'true', 'false']).default('auto'),
  /** Largest accepted request body. */
  SWITCHYARD_MAX_BODY_BYTES: int(1024).default(1_048_576),
  SWITCHYARD_MAX_BATCH: int(1, 10_000).default(1000),
  /** A pool ineligible (no serving agent, breaker OPEN) this long loses its waiting tasks to the other pools. */
  SWITCHYARD_REROUTE_GRACE_MS: int(0).default(10_000),
  /** Tasks of one type that may wait (all pools plus parked) before new ones get 429. */
  SWITCHYARD_MAX_BACKLOG: int(1).default(1_000_000),
  /** Tasks per second each client (API key, or address without keys) may enqueue, across all API processes; 0: no limit. */
  SWITCHYARD_RATE_LIMIT: z.coerce.number().min(0).max(1_000_000).default(0),
  /** Tasks a client may enqueue at once (a batch larger than this is refused with 413); default: one second's worth. */
  SWITCHYARD_RATE_BURST: int(1).optional(),
  /** Replicas that must hold a task (or a workflow run) before it is acknowledged: survives a failover; 0: do not wait. */
  SWITCHYARD_WAIT_REPLICAS: int(0, 16).default(0),
  SWITCHYARD_WAIT_REPLICAS_TIMEOUT_MS: int(1, 60_000).default(1000),
  SWITCHYARD_IDEMPOTENCY_TTL_S: int(1).default(86_400),
  /** How long completed tasks stay readable through GET /v1/tasks/:id. */
  SWITCHYARD_KEEP_COMPLETED_S: int(1).default(86_400),
  SWITCHYARD_KEEP_COMPLETED_COUNT: int(1).default(100_000),
  /** Largest workflow accepted, in nodes. */
  SWITCHYARD_MAX_WORKFLOW_NODES: int(1, 100_000).default(10_000),
  /** How long a finished workflow run stays readable through GET /v1/workflows/:id. */
  SWITCHYARD_KEEP_WORKFLOWS_S: int(1).default(7 * 86_400),
  /**
   * How long the event log keeps task and run events (GET /v1/events resumes within it); about 200 bytes of
   * Redis per event, three events per task. 0: no event log (GET /v1/events answers 404; clients poll).
   */
  SWITCHYARD_EVENTS_RETENTION_MS: int(0, 86_400_000).default(DEFAULT_EVENTS_RETENTION_MS),
  /** The shared secret completion callbacks are signed with (HMAC-SHA256); without it, requests with a callback are refused. */
  SWITCHYARD_CALLBACK_SECRET: z.string().min(16, 'at least 16 characters').optional(),
  /** Hosts callbacks may go to: names, `*.domain` for its subdomains, `*` for any. */
  SWITCHYARD_CALLBACK_HOSTS: list.pipe(z.array(z.string().regex(/^(\*|(\*\.)?[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/, 'a host name, *.domain or *'))).default(['*']),
  /**
   * Job lock: an agent that dies loses its tasks to the others after the lock expires (renewed every
   * half lock) plus up to two stalled checks: 2-5 s with these defaults. A handler that blocks its
   * event loop longer than the lock loses its task to another agent (see docs/reliability.md).
   */
  SWITCHYARD_LOCK_MS: int(1000).default(4000),
  SWITCHYARD_STALLED_INTERVAL_MS: int(500).default(500),
  SWITCHYARD_MAX_STALLED: int(1, 100).default(3),
  /** On SIGTERM an agent stops pulling and lets in-flight tasks run this long before aborting them. */
  SWITCHYARD_SHUTDOWN_GRACE_MS: int(0).default(10_000),
  SWITCHYARD_CONCURRENCY: int(1, 10_000).default(10),
  /** Tasks an agent fetches ahead of its handlers, in one Redis call (src/agent/batched-worker.ts); unset: its concurrency; 0: one at a time, as BullMQ does. */
  SWITCHYARD_PREFETCH: int(0, 10_000).optional(),
  SWITCHYARD_POOL: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -').default('default'),
  /** Agents heartbeat this often; one silent for 2 heartbeats reads UNKNOWN, for AGENT_TTL it is removed. */
  SWITCHYARD_HEARTBEAT_MS: int(50).default(1000),
  SWITCHYARD_AGENT_TTL_MS: int(100).default(3000),
  /** Agents' own health checks (see src/model/health-policy.ts). */
  SWITCHYARD_HEALTH_INTERVAL_MS: int(10).default(1000),
  SWITCHYARD_HEALTH_TIMEOUT_MS: int(1).default(2000),
  SWITCHYARD_DEGRADED_MS: int(1).default(500),
  SWITCHYARD_UNHEALTHY_AFTER: int(1, 100).default(3),
  /** How long a starting agent may take to pass its first health check before it gives up. */
  SWITCHYARD_READY_TIMEOUT_MS: int(0).default(30_000),
  SWITCHYARD_WEIGHT: z.coerce.number().positive().max(1_000_000).default(1),
  SWITCHYARD_TAGS: list.default([]),
  /** Module that exports the agent-type catalogue, and the folder of worker entrypoints (relative to cwd). */
  SWITCHYARD_TYPES: z.string().min(1).default('queues/index.ts'),
  SWITCHYARD_WORKERS_DIR: z.string().min(1).default('workers'),
  /** Where `switchyard start` keeps the embedded Redis's AOF files. */
  SWITCHYARD_DATA_DIR: z.string().min(1).default('.switchyard'),
  /** Set by `switchyard start` on the processes it runs: they stop when it is gone. */
  SWITCHYARD_SUPERVISOR_PID: int(1).optional(),
}).refine((e) => !(e.REDIS_URL && e.REDIS_CLUSTER_NODES), {
  path: ['REDIS_CLUSTER_NODES'],
  message: 'set either REDIS_URL or REDIS_CLUSTER_NODES, not both',
}).refine((e) => e.SWITCHYARD_AGENT_TTL_MS > e.SWITCHYARD_HEARTBEAT_MS, {
  path: ['SWITCHYARD_AGENT_TTL_MS'],
  message: 'must be longer than SWITCHYARD_HEARTBEAT_MS (3x is a good choice)',
}).refine((e) => e.SWITCHYARD_REQUEST_TIMEOUT_MS >= e.SWITCHYARD_HEADERS_TIMEOUT_MS, {
  path: ['SWITCHYARD_REQUEST_TIMEOUT_MS'],
  message: 'must be at least SWITCHYARD_HEADERS_TIMEOUT_MS (the head is part of the request)',
}).refine((e) => e.SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS <= e.SWITCHYARD_MAX_CONNECTIONS, {
  path: ['SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS'],
  message: 'must be at most SWITCHYARD_MAX_CONNECTIONS',
});

/** The HTTP server's connection limits and timeouts. */
export interface ConnectionLimits {
  max: number;
  perAddress: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export type Config = Readonly<{
  redisUrl: string | undefined;
  host: string;
  port: number;
  prefix: string;
  /** Keys (or their sha256:<hex> hashes) with every scope. */
  apiKeys: readonly string[];
  /** The scoped keys' file (src/api/key-ring.ts). */
  apiKeysFile: string | undefined;
  /** Host names answered without API keys besides the loopback ones: lowercase, no trailing dot, IPv6 without brackets. */
  allowedHosts: readonly string[];
  connections: Readonly<ConnectionLimits>;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  logPretty: boolean;
  maxBodyBytes: number;
  maxBatch: number;
  maxBacklog: number;
  rateLimit: { perSecond: number; burst: number };
  rerouteGraceMs: number;
  waitReplicas: ReplicaWait;
  idempotencyTtlS: number;
  keepCompleted: { age: number; count: number };
  maxWorkflowNodes: number;
  keepWorkflowsS: number;
  /** 0: no event log. */
  eventsRetentionMs: number;
  /** Completion callbacks: the signing secret (none: callbacks refused) and the hosts allowed. */
  callbacks: { secret?: string; hosts: readonly string[] };
  lockMs: number;
  stalledIntervalMs: number;
  maxStalled: number;
  shutdownGraceMs: number;
  concurrency: number;
  /** Unset: the agent's concurrency. */
  prefetch?: number;
  pool: string;
  weight: number;
  tags: readonly string[];
  heartbeatMs: number;
  agentTtlMs: number;
  health: HealthPolicy;
  readyTimeoutMs: number;
  typesModule: string;
  workersDir: string;
  dataDir: string;
  supervisorPid: number | undefined;
}>;

/** Parses an environment (process.env by default) into a frozen Config, or throws CONFIG_INVALID naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...configOf(parseEnv(env)), ...overrides });
}

/** The environment's variables, validated; CONFIG_INVALID names each bad one with its value. */
function parseEnv(env: NodeJS.ProcessEnv): z.output<typeof envSchema> {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const name = String(i.path[0] ?? '?');
    return `  ${name}=${JSON.stringify(env[name] ?? '')}: ${i.message}`;
  });
  throw new SwitchyardError('CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`);
}

function configOf(e: z.output<typeof envSchema>): Config {
  return {
    redisUrl: e.REDIS_CLUSTER_NODES ? clusterUrl(e.REDIS_CLUSTER_NODES) : e.REDIS_URL,
    host: e.HOST,
    port: e.PORT,
    prefix: e.SWITCHYARD_PREFIX,
    apiKeys: Object.freeze(e.SWITCHYARD_API_KEYS),
    apiKeysFile: e.SWITCHYARD_API_KEYS_FILE,
    allowedHosts: Object.freeze(e.SWITCHYARD_ALLOWED_HOSTS.map((h) => h.toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1'))),
    connections: Object.freeze({
      max: e.SWITCHYARD_MAX_CONNECTIONS,
      perAddress: e.SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS,
      headersTimeoutMs: e.SWITCHYARD_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.SWITCHYARD_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.SWITCHYARD_KEEP_ALIVE_TIMEOUT_MS,
    }),
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY === 'auto' ? Boolean(process.stdout.isTTY) : e.LOG_PRETTY === 'true',
    maxBodyBytes: e.SWITCHYARD_MAX_BODY_BYTES,
    maxBatch: e.SWITCHYARD_MAX_BATCH,
    maxBacklog: e.SWITCHYARD_MAX_BACKLOG,
    rateLimit: { perSecond: e.SWITCHYARD_RATE_LIMIT, burst: e.SWITCHYARD_RATE_BURST ?? Math.max(1, Math.ceil(e.SWITCHYARD_RATE_LIMIT)) },
    rerouteGraceMs: e.SWITCHYARD_REROUTE_GRACE_MS,
    waitReplicas: Object.freeze({ count: e.SWITCHYARD_WAIT_REPLICAS, timeoutMs: e.SWITCHYARD_WAIT_REPLICAS_TIMEOUT_MS }),
    idempotencyTtlS: e.SWITCHYARD_IDEMPOTENCY_TTL_S,
    keepCompleted: { age: e.SWITCHYARD_KEEP_COMPLETED_S, count: e.SWITCHYARD_KEEP_COMPLETED_COUNT },
    maxWorkflowNodes: e.SWITCHYARD_MAX_WORKFLOW_NODES,
    keepWorkflowsS: e.SWITCHYARD_KEEP_WORKFLOWS_S,
    eventsRetentionMs: e.SWITCHYARD_EVENTS_RETENTION_MS,
    callbacks: { ...(e.SWITCHYARD_CALLBACK_SECRET ? { secret: e.SWITCHYARD_CALLBACK_SECRET } : {}), hosts: Object.freeze(e.SWITCHYARD_CALLBACK_HOSTS.map((h) => h.toLowerCase().replace(/^\[(.*)\]$/, '$1'))) },
    lockMs: e.SWITCHYARD_LOCK_MS,
    stalledIntervalMs: e.SWITCHYARD_STALLED_INTERVAL_MS,
    maxStalled: e.SWITCHYARD_MAX_STALLED,
    shutdownGraceMs: e.SWITCHYARD_SHUTDOWN_GRACE_MS,
    concurrency: e.SWITCHYARD_CONCURRENCY,
    ...(e.SWITCHYARD_PREFETCH !== undefined ? { prefetch: e.SWITCHYARD_PREFETCH } : {}),
    pool: e.SWITCHYARD_POOL,
    weight: e.SWITCHYARD_WEIGHT,
    tags: Object.freeze(e.SWITCHYARD_TAGS),
    heartbeatMs: e.SWITCHYARD_HEARTBEAT_MS,
    agentTtlMs: e.SWITCHYARD_AGENT_TTL_MS,
    health: Object.freeze({
      ...DEFAULT_HEALTH_POLICY,
      intervalMs: e.SWITCHYARD_HEALTH_INTERVAL_MS,
      checkTimeoutMs: e.SWITCHYARD_HEALTH_TIMEOUT_MS,
      degradedMs: e.SWITCHYARD_DEGRADED_MS,
      unhealthyAfter: e.SWITCHYARD_UNHEALTHY_AFTER,
    }),
    readyTimeoutMs: e.SWITCHYARD_READY_TIMEOUT_MS,
    typesModule: e.SWITCHYARD_TYPES,
    workersDir: e.SWITCHYARD_WORKERS_DIR,
    dataDir: e.SWITCHYARD_DATA_DIR,
    supervisorPid: e.SWITCHYARD_SUPERVISOR_PID,
  };
}
