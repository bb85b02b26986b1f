// A small node:http client for tests: one fresh connection per request (agent: false), the
// whole response collected, with `complete` telling whether the framing was satisfied.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
  /** res.complete: every byte the framing promised arrived. */
  complete: boolean;
  /** An error seen while reading the body (e.g. 'aborted'/ECONNRESET), if any. */
  error: Error | null;
}

export interface RequestOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer | Readable;
  /** Hang guard: reject when nothing completes within this many ms. */
  timeoutMs?: number;
  agent?: http.Agent | false;
  /** Request target sent verbatim (default: the URL's pathname + search). Not normalised. */
  path?: string;
  /** Called with the response before its body is read (e.g. to pause it). */
  onResponse?: (res: http.IncomingMessage) => void;
}

/** The response head and completion facts common to every reply. */
type ReplyHead = Omit<Reply, 'body' | 'text'>;

/**
 * Sends one request and feeds the response body to `sink`; resolves when the response closes
 * (complete or not), rejects on a request error or when nothing completes within `timeoutMs`.
 */
function send<T>(url: string, opts: RequestOptions, timeoutMs: number, sink: (res: http.IncomingMessage) => (head: ReplyHead) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      req.destroy();
      reject(new Error(`request ${opts.method ?? 'GET'} ${url}: no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    const req = http.request(httpOptions(url, opts), (res) => {
      opts.onResponse?.(res);
      const finish = sink(res);
      let error: Error | null = null;
      res.on('error', (e) => {
        error = e;
      });
      res.on('close', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(finish({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, complete: res.complete, error }));
      });
    });
    req.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(e);
    });
    const b = opts.body;
    if (b instanceof Readable) b.pipe(req);
    else req.end(b);
  });
}

export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  return send(url, opts, opts.timeoutMs ?? 20_000, (res) => {
    const parts: Buffer[] = [];
    res.on('data', (d: Buffer) => parts.push(d));
    return (head) => {
      const body = Buffer.concat(parts);
      return { ...head, body, text: body.toString('utf8') };
    };
  });
}

/** Like `request` but hashes the body instead of keeping it (for large downloads). */
export function requestHashed(
  url: string,
  opts: RequestOptions & { onBytes?: (total: number, res: http.IncomingMessage) => void } = {},
): Promise<ReplyHead & { length: number; sha256: string }> {
  return send(url, opts, opts.timeoutMs ?? 120_000, (res) => {
    const h = createHash('sha256');
    let length = 0;
    res.on('data', (d: Buffer) => {
      h.update(d);
      length += d.length;
      opts.onBytes?.(length, res);
    });
    return (head) => ({ ...head, length, sha256: h.digest('hex') });
  });
}

function httpOptions(url: string, opts: RequestOptions): http.RequestOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port),
    path: opts.path ?? `${u.pathname}${u.search}`,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    agent: opts.agent ?? false,
    maxHeaderSize: 256 * 1024,
  };
}

/** All values of a header from rawHeaders, in order (case-insensitive name). */
export function rawHeaderValues(rawHeaders: string[], name: string): string[] {
  const n = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === n) out.push(rawHeaders[i + 1]!);
  return out;
}
