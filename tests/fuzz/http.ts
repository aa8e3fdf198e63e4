/**
 * A raw HTTP client for the fuzz: the path goes out byte for byte (fetch and `new URL` would resolve
 * `..` and `%2e%2e`, and re-encode what they dislike), any method, header and body, over keep-alive
 * sockets. Every body is sent with a Content-Length: Node's client sends DELETE, OPTIONS and TRACE
 * bodies without one, which the server then reads as the start of the next request.
 */
import { Agent, request } from 'node:http';

export interface FuzzRequest {
  method: string;
  /** Sent as is: percent-encode anything outside printable ASCII yourself. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export class FuzzClient {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  send(req: FuzzRequest): Promise<FuzzResponse> {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
    const headers = { ...req.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
    return new Promise((resolve, reject) => {
      const r = request({ host: this.host, port: this.port, path: req.path, method: req.method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', reject);
      r.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** `METHOD /path (n bytes)`: how a failing request is named in an assertion message. */
export function describeRequest(req: FuzzRequest): string {
  const body = req.body === undefined ? '' : ` ${JSON.stringify(String(req.body).slice(0, 300))}${req.body.length > 300 ? `… (${req.body.length} bytes)` : ''}`;
  const type = req.headers?.['content-type'];
  return `${req.method} ${req.path.length > 200 ? `${req.path.slice(0, 200)}…` : req.path}${type === undefined ? '' : ` [${type}]`}${body}`;
}
