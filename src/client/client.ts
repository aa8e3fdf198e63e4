/**
 * src/client/: a typed HTTP client for the Switchyard API (used by the CLI; exported from the
 * package). Errors come back as ApiError with the problem+json fields, so callers can show the
 * server's own explanation.
 */
import type { RunSummary, RunView } from '../workflow/view.ts';
import { isFinal } from '../workflow/run-store.ts';

export interface ClientOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:3000 */
  url: string;
  apiKey?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: ReadonlyArray<{ path: string; message: string }> = [],
  ) {
    super(`${status} ${title}: ${detail}`);
    this.name = 'ApiError';
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Called with each view read while waiting (progress). */
  onProgress?: (run: RunView) => void;
}

export class WaitTimeoutError extends Error {
  constructor(readonly last: RunView | undefined, timeoutMs: number) {
    super(`gave up waiting after ${timeoutMs} ms${last ? `; the run is ${last.state}` : ''}`);
    this.name = 'WaitTimeoutError';
  }
}

export interface SwitchyardClient {
  runWorkflow(workflow: unknown): Promise<RunSummary & { duplicate?: boolean }>;
  getWorkflow(id: string): Promise<RunView>;
  cancelWorkflow(id: string): Promise<RunView>;
  /** Polls until the run reaches a final state. */
  waitWorkflow(id: string, opts?: WaitOptions): Promise<RunView>;
}

export function createClient(o: ClientOptions): SwitchyardClient {
  const base = o.url.replace(/\/+$/, '');
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (err) {
      throw new ApiError(0, 'Unreachable', `could not reach the Switchyard API at ${base} (${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}); is it running? set --url or SWITCHYARD_URL`);
    }
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const p = (parsed ?? {}) as { title?: string; detail?: string; errors?: Array<{ path: string; message: string }> };
      throw new ApiError(res.status, p.title ?? res.statusText, p.detail ?? text, p.errors ?? []);
    }
    return parsed as T;
  }
  const client: SwitchyardClient = {
    runWorkflow: (workflow) => call('POST', '/v1/workflows', workflow),
    getWorkflow: (id) => call('GET', `/v1/workflows/${encodeURIComponent(id)}`),
    cancelWorkflow: (id) => call('DELETE', `/v1/workflows/${encodeURIComponent(id)}`),
    async waitWorkflow(id, w = {}) {
      const deadline = Date.now() + (w.timeoutMs ?? Infinity);
      let last: RunView | undefined;
      for (;;) {
        last = await client.getWorkflow(id);
        w.onProgress?.(last);
        if (isFinal(last.state)) return last;
        if (Date.now() > deadline) throw new WaitTimeoutError(last, w.timeoutMs ?? 0);
        await new Promise((r) => setTimeout(r, w.intervalMs ?? 250));
      }
    },
  };
  return client;
}
