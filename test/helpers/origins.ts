// Origins (backends) for e2e tests: node:http servers with keep-alive, raw `net` servers for
// hand-written responses, and an echo origin that reports what it received.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { SocketReader, readRequest, type RawRequest } from './raw.js';
import { sleep } from './time.js';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  /** Index of the origin-side connection it arrived on (0-based, in accept order). */
  connection: number;
  /** Set when the request's socket/request closed before the origin finished the response. */
  closedEarly: boolean;
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

export interface Origin {
  port: number;
  url: string;
  server: http.Server;
  requests: SeenRequest[];
  /** Connections accepted so far. */
  connections(): number;
  /** Resolves when `n` requests have arrived (rejects after timeoutMs). */
  waitForRequests(n: number, timeoutMs?: number): Promise<SeenRequest[]>;
  close(): Promise<void>;
}

const origins = new Set<{ close(): Promise<void> }>();

/** Closes every origin still open (call in afterAll). */
export async function closeAllOrigins(): Promise<void> {
  await Promise.all([...origins].map((o) => o.close().catch(() => undefined)));
  origins.clear();
}

function waitUntil(cond: () => boolean, timeoutMs: number, what: string, subscribe: (f: () => void) => () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cond()) return resolve();
    const timer = setTimeout(() => {
      unsub();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const unsub = subscribe(() => {
      if (cond()) {
        clearTimeout(timer);
        unsub();
        resolve();
      }
    });
  });
}

/** An HTTP origin on 127.0.0.1 and a free port, or at `at` (another loopback address, a given port). */
export async function startOrigin(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void | Promise<void>,
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<Origin> {
  const requests: SeenRequest[] = [];
  const subs = new Set<() => void>();
  const notify = () => {
    for (const f of [...subs]) f();
  };
  let conns = 0;
  const connIndex = new WeakMap<net.Socket, number>();
  const server = http.createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 60_000, maxHeaderSize: 256 * 1024 }, (req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      connection: connIndex.get(req.socket) ?? -1,
      closedEarly: false,
      req,
      res,
    };
    res.once('close', () => {
      if (!res.writableFinished) {
        seen.closedEarly = true;
        notify();
      }
    });
    requests.push(seen);
    notify();
    Promise.resolve()
      .then(() => handler(req, res, seen))
      .catch((err: unknown) => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end(String(err));
        } else res.destroy();
      });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: net.Socket) => {
    connIndex.set(s, conns++);
    notify();
  });
  await new Promise<void>((r) => server.listen(at.port, at.host, r));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const origin: Origin = {
    port,
    url: `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}`,
    server,
    requests,
    connections: () => conns,
    waitForRequests: async (n, timeoutMs = 10_000) => {
      await waitUntil(() => requests.length >= n, timeoutMs, `${n} origin requests`, (f) => {
        subs.add(f);
        return () => subs.delete(f);
      });
      return requests;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      origins.delete(origin);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  origins.add(origin);
  return origin;
}

export { eventually } from './time.js';

export interface EchoBody {
  name: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyLength: number;
  bodySha256: string;
}

/** Answers every request with JSON describing it (name, method, url, headers, body length and SHA-256). */
export function echoOrigin(name: string): Promise<Origin> {
  return startOrigin(async (req, res) => {
    const h = createHash('sha256');
    let len = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      h.update(chunk);
      len += chunk.length;
    }
    const body: EchoBody = {
      name,
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyLength: len,
      bodySha256: h.digest('hex'),
    };
    const json = Buffer.from(JSON.stringify(body));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length, 'x-origin': name });
    res.end(json);
  });
}

// ---- raw origins --------------------------------------------------------------------------------

export interface RawOrigin {
  port: number;
  url: string;
  server: net.Server;
  sockets: net.Socket[];
  connections(): number;
  close(): Promise<void>;
}

/** A bare `net` server: `onSocket` gets every accepted connection and writes whatever it likes. */
export async function startRawOrigin(onSocket: (socket: net.Socket, index: number) => void): Promise<RawOrigin> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.setNoDelay(true);
    sockets.push(s);
    try {
      onSocket(s, sockets.length - 1);
    } catch {
      s.destroy();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const o: RawOrigin = {
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    sockets,
    connections: () => sockets.length,
    close: async () => {
      if (closed) return;
      closed = true;
      origins.delete(o);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  origins.add(o);
  return o;
}

export interface RawExchange {
  req: RawRequest;
  socket: net.Socket;
  connection: number;
  /** 0-based index of this request on its connection. */
  indexOnConnection: number;
}

/**
 * A raw origin that reads requests one after another on each connection (keep-alive) and lets
 * `onRequest` write the response bytes. Return 'stop' (or destroy the socket) to stop reading.
 */
export async function startRawHttpOrigin(
  onRequest: (ex: RawExchange) => void | 'stop' | Promise<void | 'stop'>,
): Promise<RawOrigin & { requests: RawExchange[] }> {
  const requests: RawExchange[] = [];
  const o = await startRawOrigin((socket, connection) => {
    const reader = new SocketReader(socket);
    void (async () => {
      for (let i = 0; i < 10_000; i++) {
        const req = await readRequest(reader).catch(() => null);
        if (req === null || socket.destroyed) return;
        const ex: RawExchange = { req, socket, connection, indexOnConnection: i };
        requests.push(ex);
        const r = await onRequest(ex);
        if (r === 'stop' || socket.destroyed) return;
      }
    })();
  });
  return Object.assign(o, { requests });
}

/** Writes `data` in pieces of `size` bytes with a short pause between them. */
export async function writeInPieces(socket: net.Socket, data: string | Buffer, size: number, pauseMs = 2): Promise<void> {
  const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  for (let i = 0; i < buf.length && i < 1_000_000; i += size) {
    if (socket.destroyed) return;
    socket.write(buf.subarray(i, i + size));
    await sleep(pauseMs);
  }
}
