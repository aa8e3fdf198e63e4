/**
 * API keys from SWITCHYARD_API_KEYS, as `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP
 * Basic with the key as password (so a browser can open Bull Board and the dashboard). With no
 * key configured only loopback clients are served, like Redis's protected mode.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { isLoopbackAddress } from './host-check.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The key a request presents. Scheme names are case-insensitive (RFC 9110 §11.1): `BEARER k` is `Bearer k`. */
export function presentedKey(req: Request): string | undefined {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^\s*([A-Za-z]+)\s+(.*)$/s.exec(header);
  const scheme = m?.[1]?.toLowerCase();
  const credentials = m?.[2]?.trim() ?? '';
  if (scheme === 'bearer') return credentials;
  if (scheme === 'basic') {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : decoded;
  }
  const apiKey = req.headers['x-api-key'];
  return typeof apiKey === 'string' ? apiKey : undefined;
}

export type AuthResult = { ok: true } | { ok: false; reason: string };

export function authorizer(keys: readonly string[]): (req: Request) => AuthResult {
  const digests = keys.map(digest);
  if (digests.length === 0) {
    return (req) =>
      isLoopbackAddress(req.socket.remoteAddress)
        ? { ok: true }
        : { ok: false, reason: 'no API keys are configured (SWITCHYARD_API_KEYS), so only loopback clients are served' };
  }
  return (req) => {
    const key = presentedKey(req);
    if (!key) return { ok: false, reason: 'send an API key: Authorization: Bearer <key> or X-API-Key: <key>' };
    const d = digest(key);
    return digests.some((k) => timingSafeEqual(k, d)) ? { ok: true } : { ok: false, reason: 'the API key is not valid' };
  };
}
