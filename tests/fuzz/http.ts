/**
 * A raw HTTP client for the fuzz: the path goes out byte for byte (fetch and `new URL` would resolve
 * `..` and `%2e%2e`, and re-encode what they dislike), any method, header and body, over keep-alive
 * sockets. Every body is sent with a Content-Length: Node's client sends DELETE, OPTIONS and TRACE
 * bodies without one, which the server then reads as the start of the next request.
 * An answer that is an event stream (text/event-stream) never ends: it is read for a short while
 * and the connection closed (StreamRead), whether the request was meant to open one or not.
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
  /** An event stream the client closed after reading it for a while (its text: what arrived until then). */
  cut?: true;
}

/** How long an event stream is read before the client closes it. */
export interface StreamRead {
  /** After the first complete frame (`retry:`), read on until nothing has come for this long: what the server had at hand (a resume's backlog) comes at once. */
  quietMs: number;
  /** ...or this long after the first frame at most, however busy the stream. */
  settleMs: number;
  /** Keep reading past those until this holds of the text read (an event the case waits for), up to maxMs. */
  until?: (text: string) => boolean;
  /** Close after this long whatever arrived (from the answer's head). */
  maxMs: number;
}

const EVENT_STREAM = /^text\/event-stream\b/i;
/** A refusal answered with a stream by mistake: enough to see it for what it is. */
const DEFAULT_STREAM_READ: StreamRead = { quietMs: 10, settleMs: 50, maxMs: 1000 };

export class FuzzClient {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** Sends a request and reads its answer to the end, or an event stream as `stream` says (then closes the connection). */
  send(req: FuzzRequest, stream: StreamRead = DEFAULT_STREAM_READ): Promise<FuzzResponse> {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
    const headers = { ...req.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
    return new Promise((resolve, reject) => {
      const r = request({ host: this.host, port: this.port, path: req.path, method: req.method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        const answer = (): FuzzResponse => ({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        if (!EVENT_STREAM.test(String(res.headers['content-type'] ?? ''))) {
          res.on('end', () => resolve(answer()));
          return;
        }
        // An event stream: read it for a while, then close the connection (a stream the server ends is answered as is).
        let settled = false;
        let firstFrameAt: number | undefined;
        let quiet: NodeJS.Timeout | undefined;
        const timers: NodeJS.Timeout[] = [];
        const text = () => Buffer.concat(chunks).toString('utf8');
        const finish = (cut: boolean) => {
          if (settled) return;
          settled = true;
          clearTimeout(quiet);
          timers.forEach(clearTimeout);
          const a = answer();
          if (cut) r.destroy();
          resolve(cut ? { ...a, cut: true } : a);
        };
        // Done once the stream was quiet for a moment after its first frame (or busy until settleMs), and what the case waits for came.
        const maybeDone = (quietNow: boolean) => {
          if (firstFrameAt === undefined) return;
          const elapsed = Date.now() - firstFrameAt;
          clearTimeout(quiet);
          if (quietNow || elapsed >= stream.settleMs) {
            // Else wait for more: each chunk asks again, until maxMs.
            if (stream.until === undefined || stream.until(text())) finish(true);
            return;
          }
          quiet = setTimeout(() => maybeDone(true), Math.min(stream.quietMs, stream.settleMs - elapsed));
        };
        res.on('data', () => {
          if (firstFrameAt === undefined && /\r?\n\r?\n/.test(text())) firstFrameAt = Date.now();
          maybeDone(false);
        });
        res.on('end', () => finish(false));
        res.on('close', () => finish(false));
        timers.push(setTimeout(() => finish(true), stream.maxMs));
      });
      r.on('error', reject);
      r.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** `METHOD /path [content type] [Last-Event-ID] (n bytes)`: how a failing request is named in an assertion message. */
export function describeRequest(req: FuzzRequest): string {
  const body = req.body === undefined ? '' : ` ${JSON.stringify(String(req.body).slice(0, 300))}${req.body.length > 300 ? `… (${req.body.length} bytes)` : ''}`;
  const type = req.headers?.['content-type'];
  const lastEventId = req.headers?.['last-event-id'];
  return `${req.method} ${req.path.length > 200 ? `${req.path.slice(0, 200)}…` : req.path}${type === undefined ? '' : ` [${type}]`}${lastEventId === undefined ? '' : ` [Last-Event-ID: ${JSON.stringify(lastEventId)}]`}${body}`;
}

/** One block of an event stream up to its blank line: its fields (`data` lines joined by newlines) and comment lines. */
export interface StreamFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  /** Fields the format does not know, in order. */
  other: Array<[string, string]>;
  comments: string[];
}

/**
 * The complete frames of an event stream as the HTML standard reads one (lines end in CRLF, LF or CR;
 * `name: value`, one space after the colon dropped; a line starting with a colon is a comment; a
 * blank line ends a frame); what follows the last blank line was cut off by the client, and is left out.
 */
export function parseEventStream(text: string): StreamFrame[] {
  const frames: StreamFrame[] = [];
  const end = Math.max(text.lastIndexOf('\n\n'), text.lastIndexOf('\r\r'), text.lastIndexOf('\r\n\r\n'));
  if (end < 0) return frames;
  let frame: StreamFrame = { other: [], comments: [] };
  let empty = true;
  for (const line of text.slice(0, end).split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (!empty) frames.push(frame);
      frame = { other: [], comments: [] };
      empty = true;
      continue;
    }
    empty = false;
    if (line.startsWith(':')) {
      frame.comments.push(line.slice(1).replace(/^ /, ''));
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
    else if (name === 'id' || name === 'event' || name === 'retry') frame[name] = value;
    else frame.other.push([name, value]);
  }
  if (!empty) frames.push(frame);
  return frames;
}
