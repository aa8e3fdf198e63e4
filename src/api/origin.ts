/**
 * Cross-site request refusal, for every route (the /v1 API, Bull Board's actions, whatever is added
 * later). A browser sends credentials it holds (Basic auth for the dashboard) and reaches loopback
 * from any page it opens, so a page on another site can submit a form to the API. Browsers say where
 * a request comes from: `Sec-Fetch-Site` (current browsers) and `Origin` (on every non-GET request).
 * Clients that are not browsers (curl, the CLI, the typed client) send neither and are not affected.
 */
import type { Request, RequestHandler } from 'express';
import { problem, sendReply } from './problem.ts';

/** Methods that change nothing: no body is read and no cross-site check is needed. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `host[:port]` as a URL spells it (lowercase, default port dropped), or undefined when it is not one. */
function canonicalHost(scheme: string, hostHeader: string): string | undefined {
  try {
    return new URL(`${scheme}//${hostHeader}`).host;
  } catch {
    return undefined;
  }
}

/**
 * Why a request comes from another site, or undefined when it does not (or cannot be told). Same-site
 * but another origin (a sibling subdomain) counts as another site: it is another application.
 */
export function crossSiteReason(req: Request): string | undefined {
  const fetchSite = req.headers['sec-fetch-site'];
  if (fetchSite === 'cross-site' || fetchSite === 'same-site') return `the browser says the request comes from a ${fetchSite} page (Sec-Fetch-Site: ${fetchSite})`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  let from: URL;
  try {
    from = new URL(origin);
  } catch {
    return `its Origin ${JSON.stringify(origin)} is opaque (a sandboxed page, a file, a redirect)`;
  }
  if (from.origin === 'null') return `its Origin ${JSON.stringify(origin)} is opaque (a sandboxed page, a file, a redirect)`;
  const host = req.headers.host === undefined ? undefined : canonicalHost(from.protocol, req.headers.host);
  return host === from.host ? undefined : `its Origin ${from.origin} is not this API's (Host ${JSON.stringify(req.headers.host ?? '')})`;
}

/** 403 problem+json for a state-changing request (POST, PUT, PATCH, DELETE, ...) that comes from another site. */
export const refuseCrossSite: RequestHandler = (req, res, next) => {
  if (SAFE_METHODS.has(req.method)) return next();
  const reason = crossSiteReason(req);
  if (reason === undefined) return next();
  sendReply(
    res,
    problem(403, 'Forbidden', `cross-site request refused: ${reason}. Changes are accepted only from this API's own pages or from clients that are not browsers`, 'CROSS_SITE'),
  );
};
