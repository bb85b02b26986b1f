// Hand-rolled HTTP/1.1 framing for tests that must see or send exact bytes: a buffered socket
// reader, a request reader (for raw origins) and a response reader (for raw clients).
import net from 'node:net';

export class SocketReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | null = null;
  error: Error | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.ended = true;
      this.wake();
    });
  }

  get isEnded(): boolean {
    return this.ended && this.buf.length === 0;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise((r) => {
      this.waiter = r;
    });
  }

  /** Bytes up to and including `delim`, or null when the socket ended first. */
  async readUntil(delim: string, max = 1 << 20): Promise<Buffer | null> {
    for (;;) {
      const i = this.buf.indexOf(delim);
      if (i >= 0) {
        const out = this.buf.subarray(0, i + delim.length);
        this.buf = this.buf.subarray(i + delim.length);
        return out;
      }
      if (this.buf.length > max) throw new Error(`readUntil: no ${JSON.stringify(delim)} within ${max} bytes`);
      if (this.ended) return null;
      await this.wait();
    }
  }

  /** Up to n bytes (fewer only when the socket ended). */
  async readN(n: number): Promise<Buffer> {
    while (this.buf.length < n && !this.ended) await this.wait();
    const k = Math.min(n, this.buf.length);
    const out = this.buf.subarray(0, k);
    this.buf = this.buf.subarray(k);
    return out;
  }

  /** Everything until the socket ends. */
  async readAll(): Promise<Buffer> {
    while (!this.ended) await this.wait();
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }
}

export interface Head {
  startLine: string;
  /** Header lines in order, names as sent. */
  headers: [string, string][];
}

export async function readHead(r: SocketReader): Promise<Head | null> {
  const raw = await r.readUntil('\r\n\r\n', 256 * 1024);
  if (raw === null) return null;
  const lines = raw.toString('latin1').slice(0, -4).split('\r\n');
  const startLine = lines.shift() ?? '';
  const headers: [string, string][] = [];
  for (const l of lines) {
    const c = l.indexOf(':');
    if (c < 0) headers.push([l, '']);
    else headers.push([l.slice(0, c), l.slice(c + 1).trim()]);
  }
  return { startLine, headers };
}

export function headerValues(h: Head | { headers: [string, string][] }, name: string): string[] {
  const n = name.toLowerCase();
  return h.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

export function header(h: Head | { headers: [string, string][] }, name: string): string | undefined {
  const v = headerValues(h, name);
  return v.length ? v.join(', ') : undefined;
}

/** Reads a chunked body; `complete` false when the stream ended before the last chunk. */
async function readChunked(r: SocketReader): Promise<{ body: Buffer; complete: boolean; trailers: [string, string][] }> {
  const parts: Buffer[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    const sizeLine = await r.readUntil('\r\n');
    if (sizeLine === null) return { body: Buffer.concat(parts), complete: false, trailers: [] };
    const size = parseInt(sizeLine.toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine.toString('latin1'))}`);
    if (size === 0) {
      const trailers: [string, string][] = [];
      for (let j = 0; j < 1000; j++) {
        const l = await r.readUntil('\r\n');
        if (l === null) return { body: Buffer.concat(parts), complete: false, trailers };
        const s = l.toString('latin1').slice(0, -2);
        if (s === '') return { body: Buffer.concat(parts), complete: true, trailers };
        const c = s.indexOf(':');
        trailers.push([s.slice(0, c), s.slice(c + 1).trim()]);
      }
      throw new Error('too many trailers');
    }
    const data = await r.readN(size);
    parts.push(data);
    if (data.length < size) return { body: Buffer.concat(parts), complete: false, trailers: [] };
    const crlf = await r.readN(2);
    if (crlf.length < 2) return { body: Buffer.concat(parts), complete: false, trailers: [] };
  }
  throw new Error('too many chunks');
}

export interface RawRequest extends Head {
  method: string;
  target: string;
  body: Buffer;
  /** Every body byte its framing promised arrived (false: the sender cut it short). */
  complete: boolean;
}

/** Reads one request (Content-Length or chunked body). Null on a clean end. */
export async function readRequest(r: SocketReader): Promise<RawRequest | null> {
  const head = await readHead(r);
  if (head === null) return null;
  const [method = '', target = ''] = head.startLine.split(' ');
  let body: Buffer = Buffer.alloc(0);
  let complete = true;
  const te = header(head, 'transfer-encoding');
  const cl = header(head, 'content-length');
  if (te && /chunked/i.test(te)) ({ body, complete } = await readChunked(r));
  else if (cl !== undefined && Number(cl) > 0) {
    body = await r.readN(Number(cl));
    complete = body.length === Number(cl);
  }
  return { ...head, method, target, body, complete };
}

export interface RawResponse extends Head {
  status: number;
  /** Interim 1xx responses seen before the final one. */
  interim: Head[];
  body: Buffer;
  /** Framing was satisfied (all Content-Length bytes, or the terminating chunk, or close-delimited). */
  complete: boolean;
  framing: 'none' | 'content-length' | 'chunked' | 'close';
  trailers: [string, string][];
}

/** Reads one response from the reader (skipping and recording 1xx). Null when nothing came. */
export async function readResponse(r: SocketReader, method = 'GET'): Promise<RawResponse | null> {
  const interim: Head[] = [];
  for (let i = 0; i < 20; i++) {
    const head = await readHead(r);
    if (head === null) return null;
    const status = Number(head.startLine.split(' ')[1]);
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(head);
      continue;
    }
    const base = { ...head, status, interim, trailers: [] as [string, string][] };
    if (method === 'HEAD' || status === 204 || status === 304) {
      return { ...base, body: Buffer.alloc(0), complete: true, framing: 'none' };
    }
    const te = header(head, 'transfer-encoding');
    const cl = header(head, 'content-length');
    if (te && /chunked/i.test(te)) {
      const c = await readChunked(r);
      return { ...base, body: c.body, complete: c.complete, trailers: c.trailers, framing: 'chunked' };
    }
    if (cl !== undefined) {
      const n = Number(cl);
      const body = await r.readN(n);
      return { ...base, body, complete: body.length === n, framing: 'content-length' };
    }
    const body = await r.readAll();
    return { ...base, body, complete: true, framing: 'close' };
  }
  throw new Error('too many 1xx responses');
}

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Sends raw bytes on a fresh connection and reads one response. Resolves null when the server
 * closed without answering. Rejects after `timeoutMs` (a hang guard, not an assertion of speed).
 */
export async function rawRequest(
  port: number,
  data: string | Buffer,
  opts: { method?: string; timeoutMs?: number } = {},
): Promise<RawResponse | null> {
  const s = await connect(port);
  const r = new SocketReader(s);
  let timer: NodeJS.Timeout | undefined;
  try {
    s.write(data);
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`rawRequest: no response within ${opts.timeoutMs ?? 15_000} ms`)), opts.timeoutMs ?? 15_000);
    });
    return await Promise.race([readResponse(r, opts.method ?? data.toString().split(' ')[0]), timeout]);
  } finally {
    clearTimeout(timer);
    s.destroy();
  }
}
