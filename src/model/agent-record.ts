/**
 * src/registry/: agents announce themselves in Redis (record, indexes, heartbeats, expiry) so
 * every process sees the same fleet. Imports redis/, health/ and errors only.
 *
 * This file: what an agent registers, validated with errors that name the field.
 */
import semver from 'semver';
import { z } from 'zod';
import { NAME_PATTERN } from './names.ts';
import { HEALTH_STATES, type Health } from './health-state.ts';

const semverString = z.string().refine((v) => semver.valid(v) !== null, 'must be a semver version such as 1.2.0');

export const AGENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
export const TAG_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export const capabilitySchema = z.strictObject({
  name: z.string().min(1, 'must not be empty').regex(NAME_PATTERN, 'lowercase letters, digits and -'),
  version: semverString,
});

export const registrationSchema = z.strictObject({
  id: z.string().min(1, 'must not be empty').regex(AGENT_ID_PATTERN, 'letters, digits, . _ - (max 200)'),
  type: z.string().min(1, 'must not be empty').regex(NAME_PATTERN, 'lowercase letters, digits and -'),
  pool: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -').default('default'),
  version: semverString,
  capabilities: z.array(capabilitySchema).min(1, 'an agent needs at least one capability'),
  tags: z.array(z.string().regex(TAG_PATTERN, 'letters, digits, _ . - (max 64)')).max(32).default([]),
  metadata: z.record(z.string(), z.unknown()).default({}),
  weight: z.number().positive('must be greater than 0').max(1_000_000).default(1),
  concurrency: z.number().int().min(1).default(1),
  host: z.string().min(1).default('unknown'),
  pid: z.number().int().nonnegative().default(0),
  startedAt: z.string().default(() => new Date().toISOString()),
});

export type Registration = z.input<typeof registrationSchema>;
export type AgentRecord = z.output<typeof registrationSchema>;

/** What the registry knows about an agent right now. */
export interface AgentView extends AgentRecord {
  /** Health as reported, or UNKNOWN once heartbeats lapse. */
  health: Health;
  healthReason?: string;
  /** Tasks running now, and load = running / concurrency. */
  running: number;
  load: number;
  draining: boolean;
  lastHeartbeat: string;
  responseTimeMs?: number;
}

export const isHealth = (v: unknown): v is Health => typeof v === 'string' && (HEALTH_STATES as readonly string[]).includes(v);
