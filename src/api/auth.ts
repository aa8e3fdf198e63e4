/**
 * API keys (key-ring.ts), as `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic with the
 * key as password (so a browser can open Bull Board and the dashboard). With no key configured only
 * loopback clients are served, like Redis's protected mode, with every scope.
 */
import type { Request } from 'express';
import { LOOPBACK, type Principal } from '../model/api-key.ts';
import { isLoopbackAddress } from './host-check.ts';
import type { KeyRing } from './key-ring.ts';

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

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: string };

/** Who a request is. Protected mode is the ring's, decided at start (KeyRing.keyed). */
export function authorizer(ring: KeyRing): (req: Request) => AuthResult {
  if (!ring.keyed) {
    return (req) =>
      isLoopbackAddress(req.socket.remoteAddress)
        ? { ok: true, principal: LOOPBACK }
        : { ok: false, reason: 'no API keys are configured (SWITCHYARD_API_KEYS, SWITCHYARD_API_KEYS_FILE), so only loopback clients are served' };
  }
  return (req) => {
    const key = presentedKey(req);
    if (!key) return { ok: false, reason: 'send an API key: Authorization: Bearer <key> or X-API-Key: <key>' };
    const principal = ring.lookup(key);
    return principal ? { ok: true, principal } : { ok: false, reason: 'the API key is not valid' };
  };
}
