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

export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 20_000;
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      req.destroy();
      reject(new Error(`request ${opts.method ?? 'GET'} ${url}: no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    const req = http.request(httpOptions(url, opts), (res) => {
      opts.onResponse?.(res);
      const parts: Buffer[] = [];
      let error: Error | null = null;
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', (e) => {
        error = e;
      });
      res.on('close', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const body = Buffer.concat(parts);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          text: body.toString('utf8'),
          complete: res.complete,
          error,
        });
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

/** Like `request` but hashes the body instead of keeping it (for large downloads). */
export function requestHashed(
  url: string,
  opts: RequestOptions & { onBytes?: (total: number, res: http.IncomingMessage) => void } = {},
): Promise<Omit<Reply, 'body' | 'text'> & { length: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      req.destroy();
      reject(new Error(`request ${url}: no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    const req = http.request(httpOptions(url, opts), (res) => {
      opts.onResponse?.(res);
      const h = createHash('sha256');
      let length = 0;
      let error: Error | null = null;
      res.on('data', (d: Buffer) => {
        h.update(d);
        length += d.length;
        opts.onBytes?.(length, res);
      });
      res.on('error', (e) => {
        error = e;
      });
      res.on('close', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          complete: res.complete,
          error,
          length,
          sha256: h.digest('hex'),
        });
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
