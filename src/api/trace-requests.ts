/**
 * The span of each HTTP request, when tracing is on (src/config/tracing.ts): a server span continuing
 * the caller's `traceparent` header (a malformed one starts a new trace), named by its route once it is
 * known, ended when the answer is sent. Route handlers run inside it (app.ts `handle`, through
 * `withinRequest`): body parsing's stream callbacks lose the async context, so it is entered again there.
 */
import { SpanKind, SpanStatusCode, type Context } from '@opentelemetry/api';
import type { RequestHandler, Response } from 'express';
import { contextOf, openSpan, tracingOn, within } from '../config/tracing.ts';

export const traceRequests: RequestHandler = (req, res, next) => {
  if (!tracingOn() || req.path === '/healthz' || req.path === '/readyz') return next();
  const opened = openSpan(req.method, { kind: SpanKind.SERVER, parent: contextOf(req.headers), attributes: { 'http.request.method': req.method, 'url.path': req.path } });
  if (!opened) return next();
  res.locals.traceContext = opened.context;
  res.once('finish', () => {
    const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : undefined;
    if (route) opened.span.updateName(`${req.method} ${route}`).setAttribute('http.route', route);
    opened.span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) opened.span.setStatus({ code: SpanStatusCode.ERROR });
    opened.span.end();
  });
  within(opened.context, next);
};

/** Runs a route's work inside its request's span (as it is with tracing off). */
export const withinRequest = <T>(res: Response, fn: () => T): T => within(res.locals.traceContext as Context | undefined, fn);
