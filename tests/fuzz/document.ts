/**
 * The HTTP API as the fuzz knows it: the contract in src/api/contract.ts, which the OpenAPI document
 * (GET /openapi.json) is generated from, plus what the fuzz needs besides: the browser pages and the
 * methods to try where a route does not take them.
 */
import { OPERATIONS } from '../../src/api/contract.ts';

export { OPERATIONS, problemSchema as problemBody, taskSummarySchema as taskSummary, taskViewSchema as taskView } from '../../src/api/contract.ts';
export type { Method, Operation } from '../../src/api/contract.ts';

/** Browser pages mounted by the app: only their wrong methods are fuzzed (their GETs are HTML). */
export const PAGE_PATHS = ['/admin/queues', '/admin/queues/api/queues', '/dashboard'] as const;

/** Methods the fuzz sends where a route does not take them (HEAD and CONNECT are left out: no body, or no path). */
export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'] as const;

/** The methods some route answers at a concrete path. */
export function methodsAt(path: string): Set<string> {
  const allowed = new Set<string>();
  for (const o of OPERATIONS) {
    const pattern = new RegExp(`^${o.path.replace(/:[a-z]+/g, '[^/]+')}/?$`, 'i');
    if (pattern.test(path)) allowed.add(o.method);
  }
  return allowed;
}
