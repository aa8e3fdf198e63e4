/**
 * What a key may do on a route: the scope each route needs (the contract's `scope`; Bull Board's pages
 * and the dashboard, docs and metrics need `read`, Bull Board's actions `admin`), and, for a key limited
 * to some agent types, the types a request would enqueue. Both answer 403 naming what is missing;
 * nothing is written.
 */
import type { Request, RequestHandler, Response } from 'express';
import { grants, mayTouch, type Principal, type Scope } from '../model/api-key.ts';
import { BOARD_PATH } from './board.ts';
import { OPERATIONS } from './contract.ts';
import { workerPool } from '../model/worker-protocol.ts';
import { problem, sendReply as send } from './problem.ts';

const ROUTES = OPERATIONS.filter((o) => o.auth).map((o) => ({ method: o.method, pattern: new RegExp(`^${o.path.replace(/:[a-z]+/g, '[^/]+')}/?$`), scope: o.scope, what: o.id }));
const PAGES = ['/dashboard', '/docs', '/openapi.json', '/metrics'];

/** The scope a request needs, and what to call it in a refusal; undefined for a path no route has (a 404 follows). */
export function scopeOf(method: string, path: string): { scope: Scope; what: string } | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  const route = ROUTES.find((r) => r.method === m && r.pattern.test(path));
  if (route) return route;
  const under = (base: string) => path === base || path.startsWith(`${base}/`);
  if (under(BOARD_PATH)) return m === 'GET' ? { scope: 'read', what: 'Bull Board' } : { scope: 'admin', what: "Bull Board's actions" };
  const page = PAGES.find(under);
  return page ? { scope: 'read', what: `GET ${page}` } : undefined;
}

/** Who the request is (set by the auth middleware in app.ts). */
export const principalOf = (res: Response): Principal => res.locals.principal as Principal;

const forbidden = (res: Response, detail: string) => send(res, problem(403, 'Forbidden', detail, 'FORBIDDEN'));

/** Refuses a request whose key lacks the scope its route needs. */
export const requireScope: RequestHandler = (req, res, next) => {
  const need = scopeOf(req.method, req.path);
  const who = principalOf(res);
  if (!need || grants(who, need.scope)) return next();
  forbidden(res, `${need.what} needs an API key with the scope "${need.scope}" (or "admin"); the key ${who.id} has ${[...who.scopes].map((s) => `"${s}"`).join(', ')}`);
};

/** The agent types a request names (its body, or a path parameter), read defensively (its validation comes later and explains a bad one). */
export type TypesOf = (body: unknown, params: Readonly<Record<string, string | undefined>>) => string[];

const field = (v: unknown, name: string): unknown => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[name] : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string[] => (typeof v === 'string' ? [v] : []);

export const taskTypes: TypesOf = (b) => str(field(b, 'type'));
export const batchTypes: TypesOf = (b) => list(field(b, 'tasks')).flatMap((t) => taskTypes(t, {}));
/** A workflow's node types: tasks, maps (their items' type) and compensations. */
export const workflowTypes: TypesOf = (b) => list(field(b, 'nodes')).flatMap((n) => [...taskTypes(n, {}), ...taskTypes(field(n, 'compensate'), {})]);
export const scheduleTypes: TypesOf = (b) => [...taskTypes(field(b, 'task'), {}), ...workflowTypes(field(b, 'workflow'), {})];
/** A worker's type: the registration's, or the one its id names (an id that names none is refused by its route). */
export const workerTypes: TypesOf = (b, params) => {
  if (params.id === undefined) return taskTypes(b, {});
  const ref = workerPool(params.id);
  return ref ? [ref.type] : [];
};

/** Refuses a request that would enqueue an agent type its key may not touch. */
export function requireTypes(typesOf: TypesOf): RequestHandler {
  return (req: Request, res, next) => {
    const who = principalOf(res);
    if (!who.types) return next();
    const refused = [...new Set(typesOf(req.body, req.params as Record<string, string | undefined>))].filter((t) => !mayTouch(who, t));
    if (refused.length === 0) return next();
    forbidden(res, `the key ${who.id} may not touch the agent type${refused.length > 1 ? 's' : ''} ${refused.map((t) => `"${t}"`).join(', ')}; it may touch ${[...who.types].map((t) => `"${t}"`).join(', ')}`);
  };
}
