/** GET /v1/agents, POST /v1/agents/:id/drain, GET /v1/pools. */
import { z } from 'zod';
import { SwitchyardError } from '../../model/errors.ts';
import { HEALTH_STATES } from '../../model/health-state.ts';
import { parseCapability, type Registry } from '../../registry/registry.ts';
import { TAG_PATTERN } from '../../model/agent-record.ts';
import { NAME_PATTERN, type PoolRef } from '../../model/names.ts';
import type { BreakerState } from '../../model/breaker-state.ts';
import type { Catalogue } from '../../model/catalogue.ts';
import { poolOverview } from '../../routing/pool-overview.ts';
import type { PoolQueues } from '../../task/pool-queues.ts';
import { parseOrThrow } from '../../model/validation.ts';
import type { Reply } from '../problem.ts';

/**
 * `?tag=a,b` and `?tag=a&tag=b` both mean a AND b; `?tag=` is an empty list. Items are taken as
 * written (no trimming, no empty items), so what the document says an item is, the route checks.
 */
const commaList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => (s === '' ? [] : s.split(','))));

/** A semver range as the document spells it: comparators (`^1.2`, `>=1.0.0 <2`), hyphen ranges, `||`. */
const n = '(?:0|[1-9][0-9]{0,8})';
const w = '[xX*]';
/** 1, 1.2, 1.2.3, with wildcards only at the end (1.x, 1.2.*, x); or a full version with a prerelease. */
const partial = `(?:${w}(?:\\.${w}(?:\\.${w})?)?|${n}(?:\\.(?:${w}(?:\\.${w})?|${n}(?:\\.(?:${w}|${n}(?:-[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?))?))?)`;
const comparator = `(?:<=|>=|<|>|=|~|\\^)?${partial}`;
const set = `(?:${partial} - ${partial}|${comparator}(?: ${comparator})*)`;
/** `name` or `name@range`, e.g. `transform@^1.2`. */
export const CAPABILITY_PATTERN = new RegExp(`^[a-z][a-z0-9-]{0,62}(?:@${set}(?: \\|\\| ${set})*)?$`);

export const agentQuerySchema = z.strictObject({
  type: z.string().regex(NAME_PATTERN, 'an agent type name').optional(),
  pool: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a pool name').optional(),
  health: commaList.pipe(z.array(z.enum(HEALTH_STATES, { error: `one of ${HEALTH_STATES.join(', ')}` }))).optional(),
  tag: commaList.pipe(z.array(z.string().regex(TAG_PATTERN, 'letters, digits, _ . -'))).optional(),
  capability: z
    .string()
    .max(200)
    .regex(CAPABILITY_PATTERN, 'name or name@range, e.g. transform@^1.2')
    .refine((c) => { try { parseCapability(c); return true; } catch { return false; } }, 'the range is not a semver range')
    .optional(),
});

export async function listAgents(registry: Registry, query: unknown): Promise<Reply> {
  const q = parseOrThrow(agentQuerySchema, query, 'agent query');
  const agents = await registry.list({
    type: q.type,
    pool: q.pool,
    health: q.health,
    tags: q.tag,
    capability: q.capability ? parseCapability(q.capability) : undefined,
  });
  return { status: 200, body: agents };
}

export async function drainAgent(registry: Registry, id: string): Promise<Reply> {
  const agent = await registry.drain(id);
  if (!agent) throw new SwitchyardError('AGENT_NOT_FOUND', `no live agent with id ${JSON.stringify(id)}; GET /v1/agents lists them`);
  return { status: 202, body: agent };
}

export const poolQuerySchema = z.strictObject({ type: z.string().regex(NAME_PATTERN, 'an agent type name').optional() });

export async function listPools(registry: Registry, queues: PoolQueues, query: unknown, breakerState: (ref: PoolRef) => BreakerState, catalogue?: Catalogue): Promise<Reply> {
  const q = parseOrThrow(poolQuerySchema, query, 'pool query');
  return { status: 200, body: await poolOverview(registry, queues, breakerState, q.type, (type) => catalogue?.find(type)?.limits) };
}
