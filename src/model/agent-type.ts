/**
 * An agent type is a capability (`transform`, `send-email`): a name, a semver version, zod
 * schemas for its payload and result, and the defaults its tasks run with. Declared once in
 * `queues/<type>.ts`; the API validates with it, agents run with it.
 */
import semver from 'semver';
import { PRIORITY_LIMIT } from './task-request.ts';
import { z } from 'zod';
import { NAME_PATTERN } from './names.ts';
import { parseOrThrow } from './validation.ts';
import { backoffSchema, DEFAULT_BACKOFF } from './backoff.ts';
import { breakerSettingSchema, resolveBreakerPolicy, type BreakerPolicy, type BreakerSetting } from './breaker-policy.ts';
import { STRATEGIES, type Strategy } from './routing.ts';

export const taskDefaultsSchema = z.object({
  attempts: z.number().int().min(1).max(100).default(3),
  backoff: backoffSchema.default(DEFAULT_BACKOFF),
  /** Hard limit per attempt; the handler's AbortSignal fires when it passes. */
  timeoutMs: z.number().int().min(1).max(86_400_000).default(30_000),
  /** BullMQ priority: 1 is the highest, larger runs later; 0 = none (plain FIFO, ahead of prioritized tasks). */
  priority: z.number().int().min(0).max(PRIORITY_LIMIT).default(0),
});

export type TaskDefaults = z.output<typeof taskDefaultsSchema>;

/** At most `max` tasks started per `perMs`. */
export const rateSchema = z.strictObject({
  max: z.number().int().min(1).max(1_000_000),
  perMs: z.number().int().min(1).max(86_400_000),
});
export type Rate = z.output<typeof rateSchema>;

/**
 * Flow limits of an agent type, shared by its agents through Redis. Rates count tasks started:
 * `ratePerType` across all its pools, `ratePerPool` in each pool, `ratePerKey` for each concurrencyKey.
 * `concurrencyPerKey`: tasks of one concurrencyKey running at once across every agent of the type
 * (a task's concurrencyLimit overrides it).
 */
export const typeLimitsSchema = z.strictObject({
  ratePerType: rateSchema.optional(),
  ratePerPool: rateSchema.optional(),
  ratePerKey: rateSchema.optional(),
  concurrencyPerKey: z.number().int().min(1).max(100_000).optional(),
});

/** Why a task did not start when it was fetched: the limit that stopped it (the metric's `limit` label). */
export const LIMIT_KINDS = ['type-rate', 'pool-rate', 'key-rate', 'key-concurrency', 'retry-after'] as const;
export type LimitKind = (typeof LIMIT_KINDS)[number];
export type TypeLimits = z.output<typeof typeLimitsSchema>;

const definitionSchema = z.object({
  name: z.string().regex(NAME_PATTERN, 'lowercase letters, digits and -, starting with a letter (max 63)'),
  version: z.string().refine((v) => semver.valid(v) !== null, 'must be a semver version such as 1.0.0'),
  description: z.string().optional(),
  defaults: taskDefaultsSchema.default(taskDefaultsSchema.parse({})),
  /** The breaker guarding each pool of this type: a preset or a policy. */
  breaker: breakerSettingSchema.default('batch'),
  /** How tasks of this type pick a pool, unless a task says otherwise. */
  strategy: z.enum(STRATEGIES).default('weighted'),
  limits: typeLimitsSchema.default({}),
});

export interface AgentTypeInput<P extends z.ZodType, R extends z.ZodType, N extends string = string> {
  name: N;
  version: string;
  description?: string;
  payload: P;
  result: R;
  defaults?: z.input<typeof taskDefaultsSchema>;
  breaker?: BreakerSetting;
  strategy?: Strategy;
  /** Flow limits: `{ ratePerPool: { max: 100, perMs: 1000 } }` starts at most 100 tasks a second in each pool (see typeLimitsSchema). */
  limits?: z.input<typeof typeLimitsSchema>;
}

/** N is the type's name as a literal, so a typed client can map names to payloads and results. */
export interface AgentType<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType, N extends string = string> {
  readonly name: N;
  readonly version: string;
  readonly description: string | undefined;
  readonly payload: P;
  readonly result: R;
  readonly defaults: Readonly<TaskDefaults>;
  readonly breaker: BreakerPolicy;
  readonly strategy: Strategy;
  readonly limits: Readonly<TypeLimits>;
}

export type PayloadOf<T extends AgentType> = z.output<T['payload']>;
export type PayloadInputOf<T extends AgentType> = z.input<T['payload']>;
export type ResultOf<T extends AgentType> = z.output<T['result']>;

/** Declares an agent type; a bad name, version or default throws at once, naming the field. */
export function defineAgentType<P extends z.ZodType, R extends z.ZodType, const N extends string>(input: AgentTypeInput<P, R, N>): AgentType<P, R, N> {
  const def = parseOrThrow(definitionSchema, input, `agent type ${JSON.stringify(input.name)}`);
  return Object.freeze({
    name: def.name as N,
    version: def.version,
    description: def.description,
    payload: input.payload,
    result: input.result,
    defaults: Object.freeze(def.defaults),
    breaker: Object.freeze(resolveBreakerPolicy(def.breaker)),
    strategy: def.strategy,
    limits: Object.freeze(def.limits),
  });
}
