/**
 * Idempotency keys, as payment APIs use them: a key stands for one request. The reservation made
 * with the key (one SET NX GET, see producer.ts and workflow/runs.ts) stores what the key points at
 * and a fingerprint of the validated request, so a retry of the same request gets the first answer
 * and the same key sent with a different request is refused (422, as the IETF Idempotency-Key draft
 * says) instead of silently answered with a task that is not what was asked for.
 */
import { createHash } from 'node:crypto';
import { SwitchyardError } from '../model/errors.ts';

/** JSON with object keys sorted at every level, so key order never changes a fingerprint. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** 128 bits of SHA-256 over the canonical JSON of a validated request (without its idempotencyKey). */
export function requestFingerprint(request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('base64url').slice(0, 22);
}

/** The reservation's value: what the key points at (fields without spaces), then the fingerprint. */
export const reservationValue = (fields: readonly string[], fingerprint: string): string => [...fields, fingerprint].join(' ');

/**
 * Reads a reservation holding `fieldCount` fields; `fingerprint` is undefined for one written before
 * fingerprints were stored (it is then taken to match: such keys expire within the idempotency TTL).
 */
export function readReservation(value: string, fieldCount: number): { fields: string[]; fingerprint?: string } {
  const parts = value.split(' ');
  const fields = parts.slice(0, fieldCount);
  const fingerprint = parts[fieldCount];
  return fingerprint ? { fields, fingerprint } : { fields };
}

export class IdempotencyKeyReusedError extends SwitchyardError {
  constructor(readonly key: string, readonly existing: string, where = '') {
    super(
      'IDEMPOTENCY_KEY_REUSED',
      `idempotencyKey ${JSON.stringify(key)}${where ? ` (${where})` : ''} was first used with a different request, which made ${existing}: nothing was enqueued. Send the same request to get ${existing} again, or use a new key for a new request (keys are kept for SWITCHYARD_IDEMPOTENCY_TTL_S)`,
      { nonRetryable: true },
    );
    this.name = 'IdempotencyKeyReusedError';
  }
}
