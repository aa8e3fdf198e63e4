/**
 * API keys and what they may do. A key has scopes (`produce`: enqueue tasks, start and signal runs,
 * cancel, schedules; `agent`: the worker protocol; `read`: every GET, the dashboard and Bull Board's pages;
 * `admin`: everything, including dead-letter replays, drains, breaker resets and Bull Board's actions)
 * and, optionally, the agent types it may produce or work for (none listed: any). Keys are kept as
 * SHA-256 hashes (`sha256:<hex>`), never as themselves.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const SCOPES = ['produce', 'agent', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const KEY_HASH = /^sha256:[0-9a-f]{64}$/;

/** How a key is stored: `sha256:` and the hex SHA-256 of the key. */
export const hashKey = (key: string): string => `sha256:${createHash('sha256').update(key).digest('hex')}`;

export const apiKeyEntrySchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-", at most 64').describe('a name for the key: logs, metrics and the rate limit use it, never the key'),
  hash: z.string().regex(KEY_HASH, 'sha256:<64 lowercase hex digits> (`switchyard keys new` prints one)'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  types: z.array(z.string().min(1)).min(1).optional().describe('the agent types this key may produce or work for; absent: any'),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

export const keysFileSchema = z.strictObject({ keys: z.array(apiKeyEntrySchema) }).superRefine((f, ctx) => {
  const seen = new Map<string, number>();
  f.keys.forEach((k, i) => {
    for (const [field, value] of [['id', k.id], ['hash', k.hash]] as const) {
      const first = seen.get(`${field}:${value}`);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['keys', i, field], message: `repeats keys[${first}].${field}` });
      else seen.set(`${field}:${value}`, i);
    }
  });
});

/** Who a request is: its key's id, scopes and types (undefined: any type). */
export interface Principal {
  id: string;
  scopes: ReadonlySet<Scope>;
  types?: ReadonlySet<string>;
}

/** What a loopback client gets when no key is configured (protected mode): everything. */
export const LOOPBACK: Principal = Object.freeze({ id: 'loopback', scopes: new Set<Scope>(['admin']) });

export const toPrincipal = (e: ApiKeyEntry): Principal => ({ id: e.id, scopes: new Set(e.scopes), ...(e.types ? { types: new Set(e.types) } : {}) });

/** Whether a principal holds a scope (admin holds them all). */
export const grants = (p: Principal, scope: Scope): boolean => p.scopes.has(scope) || p.scopes.has('admin');

/** Whether a principal may produce or work for an agent type. */
export const mayTouch = (p: Principal, type: string): boolean => p.types === undefined || p.types.has(type);
