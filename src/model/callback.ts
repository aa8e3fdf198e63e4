/**
 * Completion callbacks (webhooks): a task or a run may carry `callback: { url }`; when it ends,
 * Switchyard POSTs its final view there, signed. The URL is checked when the request is made: http or
 * https only, and its host on the allow-list (SWITCHYARD_CALLBACK_HOSTS). The signature, as a receiver
 * checks it: header `Switchyard-Signature: t=<ms since epoch>,v1=<hex>`, where hex is
 * HMAC-SHA256(secret, `<t>.<raw body>`) with the shared SWITCHYARD_CALLBACK_SECRET; `verifyCallback`
 * does it (constant-time compare, and a timestamp tolerance against replays).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from './errors.ts';

export const callbackSchema = z.strictObject({
  url: z
    .string()
    .max(2000)
    .refine((u) => URL.canParse(u), 'an absolute URL')
    .refine((u) => !URL.canParse(u) || ['http:', 'https:'].includes(new URL(u).protocol), 'http or https only'),
});

export type Callback = z.output<typeof callbackSchema>;

/** The header a callback's signature travels in, and the one naming its delivery (the same on every retry: dedupe on it). */
export const SIGNATURE_HEADER = 'switchyard-signature';
export const DELIVERY_HEADER = 'switchyard-delivery';

/** Why a callback URL's host is not allowed, or undefined when it is. `allowed`: host names, `*.domain` for its subdomains, `*` for any. */
export function callbackHostProblem(url: string, allowed: readonly string[]): string | undefined {
  const host = new URL(url).hostname.toLowerCase();
  const ok = allowed.some((a) => a === '*' || a === host || (a.startsWith('*.') && host.endsWith(a.slice(1))));
  return ok ? undefined : `host ${host} is not allowed for callbacks (SWITCHYARD_CALLBACK_HOSTS: ${allowed.join(', ') || 'none'})`;
}

/** Throws a ValidationError at `path` when a callback cannot be taken: no secret to sign it with, or a host not allowed. */
export function checkCallback(url: string, c: { secret?: string; hosts: readonly string[] }, path: string): void {
  const problem = c.secret === undefined ? 'callbacks are signed: set SWITCHYARD_CALLBACK_SECRET on the API and the agents to take them' : callbackHostProblem(url, c.hosts);
  if (problem) throw new ValidationError(`${path} is invalid: ${problem}`, [{ path: `${path}.url`, message: problem }]);
}

/** The signature header's value for `body` sent at `t` (ms). */
export function signCallback(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Whether `header` (Switchyard-Signature) signs `body` (the raw bytes as received, as text) with
 * `secret`, at a time no further than `toleranceMs` from `now`.
 */
export function verifyCallback(secret: string, header: string | undefined, body: string, toleranceMs = 300_000, now = Date.now()): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(now - t) > toleranceMs) return false;
  const expected = Buffer.from(signCallback(secret, body, t).slice(-64), 'hex');
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}
