/**
 * Loopback checks: the Host header of requests to an API without keys (DNS rebinding), and the
 * address it listens on (HOST). Without keys the API trusts whoever reaches it on loopback; a page on
 * `attacker.test` whose name is re-pointed at 127.0.0.1 reaches it too, but its requests still say
 * `Host: attacker.test`, which is how they are told apart.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { RequestHandler } from 'express';
import { SwitchyardError } from '../model/errors.ts';
import { problem, sendReply } from './problem.ts';

/** A loopback IP address (127.0.0.0/8, ::1, 127.x mapped into IPv6); names are not addresses. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase();
  if (isIP(a) === 4) return a.startsWith('127.');
  if (isIP(a) === 6) return a === '::1' || a === '0:0:0:0:0:0:0:1' || (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 && a.slice(7).startsWith('127.'));
  return false;
}

/** The name part of a Host header, lowercase, without port, brackets or a trailing dot; undefined when malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h) ?? /^([^:[\]\s]+)(?::\d{1,5})?$/.exec(h);
  return m?.[1]?.replace(/\.$/, '');
}

/** Whether a Host header names this API on loopback, or one of the configured names. */
export function isAllowedHost(header: string | undefined, allowed: readonly string[]): boolean {
  const name = hostName(header);
  if (name === undefined) return false;
  return name === 'localhost' || isLoopbackAddress(name) || allowed.includes(name);
}

/** Middleware for an API without keys: 421 problem+json for a Host that is not loopback nor allowed. */
export function hostCheck(allowed: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (isAllowedHost(req.headers.host, allowed)) return next();
    sendReply(
      res,
      problem(
        421,
        'Misdirected request',
        `this API runs without API keys, so it answers only requests addressed to localhost or a loopback address, not Host ${JSON.stringify(req.headers.host ?? '')}` +
          ' (a defence against DNS rebinding): use http://127.0.0.1:<port>, add the name to SWITCHYARD_ALLOWED_HOSTS, or set SWITCHYARD_API_KEYS',
        'MISDIRECTED_REQUEST',
      ),
    );
  };
}

export type Lookup = (host: string) => Promise<readonly string[]>;
const systemLookup: Lookup = async (host) => (await dnsLookup(host, { all: true })).map((a) => a.address);

/**
 * Refuses to listen on HOST without keys unless every address it names is loopback: the name is
 * resolved (`127.0.0.1.example.com` may point anywhere), and a name that does not resolve is refused too.
 */
export async function assertLoopbackListen(host: string, lookup: Lookup = systemLookup): Promise<void> {
  const refuse = (why: string) =>
    new SwitchyardError('CONFIG_INVALID', `refusing to listen on HOST=${host} without API keys (${why}): set SWITCHYARD_API_KEYS=<key>[,<key>...] or HOST=127.0.0.1`);
  if (isLoopbackAddress(host.replace(/^\[(.*)\]$/, '$1'))) return;
  let addresses: readonly string[];
  try {
    addresses = await lookup(host);
  } catch (err) {
    throw refuse(`it does not resolve: ${err instanceof Error ? err.message : String(err)}`);
  }
  const outside = addresses.filter((a) => !isLoopbackAddress(a));
  if (addresses.length === 0 || outside.length > 0) throw refuse(`it resolves to ${outside.join(', ') || 'nothing'}, not loopback only`);
}
