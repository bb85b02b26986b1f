// A minimal WebSocket client and echo backend for the tests, on corelb's own framing
// (src/upstream/websocket-frames.ts): the client masks its frames and reads the handshake answer
// raw (a non-101 answer comes back as status, head and body); the backend is a node:http server
// answering 'upgrade' itself, echoing every message, answering close frames with the same code,
// and obeying a few text commands ("who", "close CODE REASON", "closeraw HEX" (a close frame of
// that payload, valid or not), "texthex HEX" (a text message of those bytes, UTF-8 or not), "flood N SIZE", "ping DATA",
// "stall": read nothing more).
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { acceptFor, closePayload, encodeFrame, FrameReader, newKey, Opcode } from '../../src/upstream/websocket-frames.js';

export interface WsMessage {
  data: Buffer;
  binary: boolean;
}

export interface WsClose {
  code: number;
  reason: string;
  /** False when the connection ended without a close frame. */
  framed: boolean;
}

export class WsClient {
  readonly socket: net.Socket;
  readonly protocol: string;
  private readonly messages: WsMessage[] = [];
  private waiters: (() => void)[] = [];
  readonly pings: Buffer[] = [];
  readonly pongs: Buffer[] = [];
  closeFrame: WsClose | null = null;
  readonly closed: Promise<WsClose>;

  /** `answerPings` false: pings are recorded and left unanswered (a client that looks dead). */
  constructor(socket: net.Socket, protocol: string, rest: Buffer, answerPings = true) {
    this.socket = socket;
    this.protocol = protocol;
    let resolveClosed!: (c: WsClose) => void;
    this.closed = new Promise((r) => (resolveClosed = r));
    const reader = new FrameReader(
      {
        onMessage: (data, binary) => {
          this.messages.push({ data, binary });
          this.wake();
        },
        onPing: (data) => {
          this.pings.push(data);
          if (answerPings) socket.write(encodeFrame(Opcode.Pong, data, true));
        },
        onPong: (data) => {
          this.pongs.push(data);
        },
        onClose: (code, reason) => {
          this.closeFrame = { code, reason: reason.toString(), framed: true };
          socket.end(encodeFrame(Opcode.Close, closePayload(code === 1005 ? undefined : code, reason), true));
        },
        onProtocolError: (code, why) => {
          this.closeFrame = { code, reason: why, framed: false };
          socket.destroy();
        },
      },
      1024 * 1024 * 1024,
      false,
    );
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolveClosed(this.closeFrame ?? { code: 1006, reason: '', framed: false });
      this.wake();
    });
    if (rest.length > 0) reader.push(rest);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(data: string | Buffer, binary = typeof data !== 'string'): boolean {
    return this.socket.write(encodeFrame(binary ? Opcode.Binary : Opcode.Text, typeof data === 'string' ? Buffer.from(data) : data, true));
  }
  /** A message in fragments of `size` bytes. */
  sendFragmented(data: Buffer, size: number, binary = true): void {
    for (let at = 0; at < data.length; at += size) {
      const last = at + size >= data.length;
      this.socket.write(encodeFrame(at === 0 ? (binary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation, data.subarray(at, at + size), true, last));
    }
  }
  ping(data: string): void {
    this.socket.write(encodeFrame(Opcode.Ping, Buffer.from(data), true));
  }
  close(code?: number, reason = ''): void {
    this.socket.write(encodeFrame(Opcode.Close, closePayload(code, reason), true));
  }

  /** The next message (waits up to `ms`). */
  async next(ms = 10_000): Promise<WsMessage> {
    const deadline = Date.now() + ms;
    while (this.messages.length === 0) {
      if (this.socket.destroyed && this.closeFrame !== null) throw new Error('closed: ' + JSON.stringify(this.closeFrame));
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message within ' + ms + ' ms');
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.messages.shift()!;
  }
  get received(): number {
    return this.messages.length;
  }
}

export interface HttpAnswer {
  status: number;
  head: string;
  body: string;
}

export interface ConnectOptions {
  path?: string;
  protocols?: string[];
  headers?: Record<string, string>;
  /** wss: the CA to trust and the name to send. */
  tls?: { ca: string; servername: string };
  /** False: leave pings unanswered. */
  answerPings?: boolean;
  /** The Connection field's value (default `Upgrade`). */
  connection?: string;
  /** The Sec-WebSocket-Version field's value (default `13`); null: no such field. */
  version?: string | null;
}

/** Opens a WebSocket through port; resolves with the client, or with the HTTP answer when not 101. */
export async function wsConnect(port: number, opts: ConnectOptions = {}): Promise<WsClient | HttpAnswer> {
  const socket = opts.tls === undefined ? net.connect(port, '127.0.0.1') : tls.connect({ port, host: '127.0.0.1', ca: opts.tls.ca, servername: opts.tls.servername });
  await once(socket, opts.tls === undefined ? 'connect' : 'secureConnect');
  const key = newKey();
  let head = `GET ${opts.path ?? '/'} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nupgrade: websocket\r\nconnection: ${opts.connection ?? 'Upgrade'}\r\nsec-websocket-key: ${key}\r\n`;
  if (opts.version !== null) head += `sec-websocket-version: ${opts.version ?? '13'}\r\n`;
  head += 'sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n';
  if (opts.protocols !== undefined) head += `sec-websocket-protocol: ${opts.protocols.join(', ')}\r\n`;
  for (const [k, v] of Object.entries(opts.headers ?? {})) head += `${k}: ${v}\r\n`;
  socket.write(head + '\r\n');
  let buf = Buffer.alloc(0);
  for (;;) {
    const [chunk] = (await Promise.race([once(socket, 'data'), once(socket, 'close').then(() => [Buffer.alloc(0)])])) as [Buffer];
    if (chunk.length === 0) throw new Error('closed during the handshake: ' + buf.toString());
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) continue;
    const text = buf.subarray(0, end).toString('latin1');
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
    if (status !== 101) {
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
      while (buf.length < end + 4 + length) {
        const [more] = (await once(socket, 'data')) as [Buffer];
        buf = Buffer.concat([buf, more]);
      }
      socket.destroy();
      return { status, head: text, body: buf.subarray(end + 4, end + 4 + length).toString() };
    }
    socket.removeAllListeners('data');
    if (!text.toLowerCase().includes('sec-websocket-accept: ' + acceptFor(key).toLowerCase())) throw new Error('bad accept: ' + text);
    if (/sec-websocket-extensions/i.test(text)) throw new Error('an extension was agreed: ' + text);
    const protocol = /\r\nsec-websocket-protocol: *([^\r]*)/i.exec(text)?.[1] ?? '';
    return new WsClient(socket, protocol, buf.subarray(end + 4), opts.answerPings ?? true);
  }
}

export async function wsOpen(port: number, opts: ConnectOptions = {}): Promise<WsClient> {
  const c = await wsConnect(port, opts);
  if (!(c instanceof WsClient)) throw new Error('not upgraded: ' + c.status + ' ' + c.head);
  return c;
}

export interface WsBackend {
  port: number;
  /** http://127.0.0.1:PORT, or https:// for a server given as an https.Server. */
  url: string;
  name: string;
  /** Handshake request heads seen (lower-cased names). */
  handshakes: http.IncomingHttpHeaders[];
  /** Close frames received: [code, reason]. */
  closes: [number, string][];
  sockets: Set<net.Socket>;
  /** Messages received. */
  messages: number;
  /** Ping payloads received. */
  pings: string[];
  close(): Promise<void>;
}

const backends = new Set<WsBackend>();

export interface WsBackendOptions {
  /** Answer every handshake with this raw HTTP response instead. */
  refuse?: string;
  server?: http.Server | https.Server;
  /** A 101 that breaks the rules: this Sec-WebSocket-Accept instead of the right one, these field lines added. */
  accept?: string;
  fields?: string;
}

/** An echo backend. */
export async function startWsBackend(name: string, opts: WsBackendOptions = {}): Promise<WsBackend> {
  const server = opts.server ?? http.createServer((_req, res) => res.end(name));
  const b: WsBackend = {
    port: 0,
    url: '',
    name,
    handshakes: [],
    closes: [],
    sockets: new Set(),
    messages: 0,
    pings: [],
    close: async () => {
      backends.delete(b);
      for (const s of b.sockets) s.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, rest: Buffer) => {
    b.handshakes.push(req.headers);
    b.sockets.add(socket);
    socket.on('close', () => b.sockets.delete(socket));
    socket.on('error', () => undefined);
    if (opts.refuse !== undefined) {
      socket.end(opts.refuse);
      return;
    }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    let head = `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${opts.accept ?? acceptFor(String(req.headers['sec-websocket-key']))}\r\n${opts.fields ?? ''}`;
    if (offered.length > 0) head += `sec-websocket-protocol: ${offered[offered.length - 1]}\r\n`;
    socket.setNoDelay(true);
    socket.write(head + '\r\n');
    const send = (op: number, data: Buffer): void => {
      if (!socket.destroyed) socket.write(encodeFrame(op, data, false));
    };
    const reader = new FrameReader(
      {
        onMessage: (data, binary) => {
          b.messages++;
          const text = binary ? '' : data.toString();
          if (text === 'who') send(Opcode.Text, Buffer.from(name));
          else if (text === 'stall') socket.pause();
          else if (text.startsWith('closeraw ')) socket.end(encodeFrame(Opcode.Close, Buffer.from(text.slice(9), 'hex'), false));
          else if (text.startsWith('texthex ')) send(Opcode.Text, Buffer.from(text.slice(8), 'hex'));
          else if (text.startsWith('close ')) {
            const [, code, ...reason] = text.split(' ');
            socket.end(encodeFrame(Opcode.Close, closePayload(Number(code), reason.join(' ')), false));
          } else if (text.startsWith('ping ')) send(Opcode.Ping, Buffer.from(text.slice(5)));
          else if (text.startsWith('flood ')) {
            const [, n, size] = text.split(' ');
            const payload = Buffer.alloc(Number(size), 120);
            for (let i = 0; i < Number(n); i++) send(Opcode.Binary, payload);
          } else send(binary ? Opcode.Binary : Opcode.Text, data);
        },
        onPing: (data) => {
          b.pings.push(data.toString());
          send(Opcode.Pong, data);
        },
        onPong: (data) => {
          b.messages++;
          send(Opcode.Text, Buffer.concat([Buffer.from('pong '), data]));
        },
        onClose: (code, reason) => {
          b.closes.push([code, reason.toString()]);
          socket.end(encodeFrame(Opcode.Close, closePayload(code === 1005 ? undefined : code, reason), false));
        },
        onProtocolError: () => socket.destroy(),
      },
      64 * 1024 * 1024,
      true,
    );
    socket.on('data', (c: Buffer) => reader.push(c));
    if (rest.length > 0) reader.push(rest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as net.AddressInfo).port;
  b.url = `${server instanceof https.Server ? 'https' : 'http'}://127.0.0.1:${b.port}`;
  backends.add(b);
  return b;
}

export async function closeAllWsBackends(): Promise<void> {
  await Promise.all([...backends].map((b) => b.close()));
}
