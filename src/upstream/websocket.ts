// Owns the backend side of a proxied WebSocket: one dedicated connection (net or TLS, never
// pooled), the handshake (corelb's own Sec-WebSocket-Key, no extension offered, the answer's
// Sec-WebSocket-Accept checked, a subprotocol only among those the client offered, timed as
// connect then answer), then messages both ways with masked frames (websocket-frames.ts; the
// frames of an event-loop turn in one write). An answer other than a valid 101 is read whole
// (bounded) and handed back as an ordinary response for the client; a failure is named by the
// error table's code (a connect failure sent nothing).

import net from 'node:net';
import tls from 'node:tls';
import { acceptFor, closePayload, FrameReader, FrameWriter, newKey, Opcode, type FrameHandler } from './websocket-frames.js';
import { READ_BUFFER } from './read-buffer.js';
import type { UpstreamTls } from './tls.js';
import type { ErrorCode } from '../errors.js';
import { isTokenSpan, listElements, trimOws } from '../http-tokens.js';

/** A handshake answer head (status line and fields) larger than this is an invalid response. */
const MAX_HEAD = 64 * 1024;
/** A refusal's body larger than this is not relayed (the client gets 502). */
const MAX_REFUSAL_BODY = 1024 * 1024;

export interface RefusalAnswer {
  /** "403 Forbidden" */
  readonly status: string;
  /** Lower-cased names; hop-by-hop and framing fields left out. */
  readonly fields: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

/** The FrameHandler's payloads are views of the socket's chunks, valid only during the call. */
export interface UpstreamWebSocketEvents extends FrameHandler {
  /** The backend accepted: its subprotocol and extensions ('' for none). */
  onOpen(protocol: string): void;
  /** The backend answered something other than 101: relay it. */
  onRefused(answer: RefusalAnswer): void;
  /**
   * Connection failed, closed, or broke the protocol; `opened`: after onOpen. Before it, `code`
   * says what failed (a connect failure sent nothing: the handshake may go to another backend).
   */
  onFailure(code: FailureCode, why: string, opened: boolean): void;
  /** The socket's user-space queue drained. */
  onDrain(): void;
  /** Runs `fn`, which may deliver many messages, batched towards the client (a cork). */
  batch(fn: () => void): void;
  /** The frames queued by send/ping/pong were handed to the socket (once per event-loop turn). */
  onFlushed(): void;
}

/** How a handshake failed, as the error table names it. */
export type FailureCode = Extract<ErrorCode, 'CLB_ERR_CONNECT' | 'CLB_ERR_CONNECT_TIMEOUT' | 'CLB_ERR_TLS' | 'CLB_ERR_RESET' | 'CLB_ERR_INVALID_RESPONSE' | 'CLB_ERR_RESPONSE_TIMEOUT' | 'CLB_ERR_INTERNAL'>;

const DROPPED_FIELDS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'trailer', 'proxy-connection']);

export interface WebSocketTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: UpstreamTls | null;
}

/** The status code of "HTTP/1.x NNN[ reason]" (a reason without CR or LF), or -1. */
function statusOf(line: string): number {
  if (line.length < 12 || !line.startsWith('HTTP/1.') || (line[7] !== '0' && line[7] !== '1') || line[8] !== ' ') return -1;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = line.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    status = status * 10 + d;
  }
  if (line.length > 12 && line[12] !== ' ') return -1;
  for (let i = 13; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 10 || c === 13) return -1;
  }
  return status;
}

function hasControlByte(line: string, from: number): boolean {
  for (let i = from; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}

export class UpstreamWebSocket {
  private readonly events: UpstreamWebSocketEvents;
  private readonly socket: net.Socket;
  private readonly key = newKey();
  private readonly reader: FrameReader;
  private head: Buffer | null = Buffer.alloc(0);
  private opened = false;
  private done = false;
  private closeSent = false;
  private timer: NodeJS.Timeout | null;

  /**
   * `requestHead` ends with its blank line and carries no Sec-WebSocket-Key (added here). The
   * handshake has `connectTimeoutMs` to connect (TLS included), then `answerTimeoutMs` for the
   * answer's head.
   */
  constructor(target: WebSocketTarget, requestHead: string, maxMessage: number, connectTimeoutMs: number, answerTimeoutMs: number, events: UpstreamWebSocketEvents) {
    this.events = events;
    this.requestHead = requestHead;
    const t = target.tls;
    // the relay hands each message to uWS, which copies it, before the call returns; a plain
    // socket reads into the thread's shared buffer (read-buffer.ts: no Buffer and no 'data' event
    // per read), so a frame split across reads is copied, as are a partial head and a refusal
    this.reader = new FrameReader(events, maxMessage, false, false, t === null);
    this.answerTimeoutMs = answerTimeoutMs;
    const head = requestHead.slice(0, -2) + 'sec-websocket-key: ' + this.key + '\r\n\r\n';
    const onread = {
      buffer: READ_BUFFER,
      callback: (n: number): boolean => {
        this.read(READ_BUFFER, n);
        return true;
      },
    };
    this.socket =
      t === null
        ? net.connect({ host: target.host, port: target.port, noDelay: true, onread })
        : tls.connect({ host: target.host, port: target.port, servername: t.servername, secureContext: t.secureContext, rejectUnauthorized: t.verify }).setNoDelay(true);
    this.tls = t !== null;
    // held by the socket until it is connected: a failed connect sent nothing
    this.socket.write(head);
    this.timer = setTimeout(() => this.fail('CLB_ERR_CONNECT_TIMEOUT', 'connect timed out'), connectTimeoutMs);
    this.socket.once(t === null ? 'connect' : 'secureConnect', () => this.connected());
    // a TLS socket takes no onread buffer: its decrypted bytes come as 'data' chunks
    if (t !== null) this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('drain', () => {
      if (!this.done) events.onDrain();
    });
    this.socket.on('error', (err) => this.ended(err.message));
    this.socket.on('close', () => this.ended('backend closed the connection'));
  }

  private readonly tls: boolean;
  private readonly answerTimeoutMs: number;
  /** The handshake's head as sent (its Sec-WebSocket-Protocol lines: what the client offered). */
  private readonly requestHead: string;
  /** TCP (and TLS) connected: what was written may have reached the backend. */
  private isConnected = false;

  private connected(): void {
    if (this.done) return;
    this.isConnected = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail('CLB_ERR_RESPONSE_TIMEOUT', 'no handshake answer in time'), this.answerTimeoutMs);
  }

  /** The code of a connection that ended now: a connect or TLS failure sent nothing. */
  private failureBeforeAnswer(): FailureCode {
    if (this.isConnected) return 'CLB_ERR_RESET';
    return this.tls && this.socket.connecting === false ? 'CLB_ERR_TLS' : 'CLB_ERR_CONNECT';
  }

  /** Bytes written or queued and not yet taken by the kernel. */
  get buffered(): number {
    return this.socket.writableLength + this.out.length;
  }

  send(data: Uint8Array, binary: boolean): void {
    this.write(binary ? Opcode.Binary : Opcode.Text, data);
  }
  ping(data: Uint8Array): void {
    this.write(Opcode.Ping, data);
  }
  pong(data: Uint8Array): void {
    this.write(Opcode.Pong, data);
  }

  /** The frames of one turn of the event loop (the messages of one client read), encoded into one buffer. */
  private readonly out = new FrameWriter(true);
  private flushQueued = false;

  /** Frames written in one turn leave in one socket write, in the check phase that follows. */
  private write(opcode: number, data: Uint8Array): void {
    if (this.done || this.closeSent) return;
    this.out.frame(opcode, data);
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  }
  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.out.length > 0 && !this.socket.destroyed) this.socket.write(this.out.take());
    if (!this.done) this.events.onFlushed();
  };
  /** Send a close frame; the connection ends when the backend answers it (or at once when `now`). */
  close(code: number | undefined, reason: Uint8Array | string): void {
    if (this.done) return;
    if (!this.closeSent) {
      this.closeSent = true;
      // after the frames still queued
      this.out.frame(Opcode.Close, closePayload(code, reason));
      this.socket.end(this.out.take());
    }
    // a backend that never answers the close: cut after a while
    setTimeout(() => this.destroy(), 2000).unref();
  }
  /** Cut the connection; no event follows. */
  destroy(): void {
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket.destroy();
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }

  /**
   * The connection ended. After corelb sent its close frame that is the close handshake's normal
   * end (RFC 6455 §7.1.1: the server closes the TCP connection first), not a failure; before, it is
   * one.
   */
  private ended(why: string): void {
    if (!this.closeSent) {
      this.fail(this.failureBeforeAnswer(), why);
      return;
    }
    if (this.done) return;
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket.destroy();
  }

  private fail(code: FailureCode, why: string): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket.destroy();
    this.events.onFailure(code, why, this.opened);
  }

  /** The chunk being handed to the frame reader (pushChunk, bound once: no closure per read). */
  private chunk: Buffer = READ_BUFFER;
  private chunkEnd = 0;
  private readonly pushChunk = (): void => this.reader.push(this.chunk, this.chunkEnd);

  /** A read: bytes [0, n) of `chunk`, valid only during the call (the shared read buffer, for a plain socket). */
  private read(chunk: Buffer, n = chunk.length): void {
    try {
      this.onData(chunk, n);
    } catch (e) {
      this.fail('CLB_ERR_INTERNAL', 'internal error: ' + (e instanceof Error ? e.message : String(e)));
    }
  }

  private onData(chunk: Buffer, n: number): void {
    if (this.done) return;
    if (this.head === null) {
      this.chunk = chunk;
      this.chunkEnd = n;
      this.events.batch(this.pushChunk);
      this.chunk = READ_BUFFER;
      return;
    }
    if (n !== chunk.length) chunk = chunk.subarray(0, n);
    // before the handshake is over, whatever is kept is a copy (the chunk may be the shared buffer)
    const buf = this.head.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.head, chunk]);
    if (this.refusal !== null) {
      this.head = buf;
      this.readRefusalBody();
      return;
    }
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD) this.fail('CLB_ERR_INVALID_RESPONSE', 'handshake answer head too large');
      else this.head = buf;
      return;
    }
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const statusLine = lines[0]!;
    const status = statusOf(statusLine);
    if (status < 0) {
      this.fail('CLB_ERR_INVALID_RESPONSE', 'invalid handshake answer');
      return;
    }
    const fields: [string, string][] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      // a field name is a token right up to its colon; a value holds no control byte but HTAB
      // (the answer may be relayed to the client: nothing may split it)
      if (colon <= 0 || !isTokenSpan(line, 0, colon) || hasControlByte(line, colon + 1)) {
        this.fail('CLB_ERR_INVALID_RESPONSE', 'invalid field in the handshake answer');
        return;
      }
      fields.push([line.slice(0, colon).toLowerCase(), trimOws(line.slice(colon + 1))]);
    }
    const field = (name: string): string => fields.find((f) => f[0] === name)?.[1] ?? '';
    const rest = buf.subarray(end + 4);
    if (status === 101) {
      if (field('upgrade').toLowerCase() !== 'websocket' || field('sec-websocket-accept') !== acceptFor(this.key)) {
        this.fail('CLB_ERR_INVALID_RESPONSE', '101 answer without a valid Sec-WebSocket-Accept');
        return;
      }
      if (field('sec-websocket-extensions') !== '') {
        this.fail('CLB_ERR_INVALID_RESPONSE', 'the backend agreed an extension that was not offered');
        return;
      }
      const protocol = field('sec-websocket-protocol');
      if (protocol !== '' && !offersProtocol(this.requestHead, protocol)) {
        // the client would fail the WebSocket itself (RFC 6455 §4.1): say why here instead
        this.fail('CLB_ERR_INVALID_RESPONSE', 'the backend chose a subprotocol that was not offered');
        return;
      }
      this.head = null;
      this.opened = true;
      clearTimeout(this.timer!);
      this.timer = null;
      this.events.onOpen(field('sec-websocket-protocol'));
      if (rest.length > 0 && !this.done) this.reader.push(rest);
      return;
    }
    const length = field('content-length');
    this.refusal = {
      status: statusLine.length === 12 ? statusLine.slice(9) + ' ' : statusLine.slice(9),
      fields: fields.filter((f) => !DROPPED_FIELDS.has(f[0])),
      chunked: field('transfer-encoding').toLowerCase().includes('chunked'),
      length: length === '' ? -1 : Number(length),
    };
    this.head = rest;
    this.readRefusalBody();
  }

  private refusal: { status: string; fields: [string, string][]; chunked: boolean; length: number } | null = null;

  /** The refusal's body, once all of it is in `head`. */
  private readRefusalBody(): void {
    const r = this.refusal!;
    const buf = this.head!;
    let body: Buffer | null = null;
    if (r.chunked) body = dechunk(buf);
    else if (r.length >= 0) body = buf.length >= r.length ? buf.subarray(0, r.length) : null;
    if (body === null && buf.length > MAX_REFUSAL_BODY) {
      this.fail('CLB_ERR_INVALID_RESPONSE', 'handshake refusal body too large');
      return;
    }
    if (body === null && (r.chunked || r.length >= 0)) return;
    if (body === null) {
      // delimited by the close: wait for it
      this.socket.removeAllListeners('close');
      this.socket.on('close', () => this.refused(r, this.head!));
      return;
    }
    this.refused(r, body);
  }

  private refused(r: { status: string; fields: [string, string][] }, body: Buffer): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket.destroy();
    this.events.onRefused({ status: r.status, fields: r.fields, body });
  }
}

/**
 * Is `protocol` one of the subprotocols that `head`'s Sec-WebSocket-Protocol lines offer (each a
 * list; compared exactly)? The head's field names are lower-case (uWS's).
 */
function offersProtocol(head: string, protocol: string): boolean {
  const NAME = '\r\nsec-websocket-protocol:';
  let offered: string[] | null = null;
  for (let at = head.indexOf(NAME); at >= 0; at = head.indexOf(NAME, at + NAME.length)) {
    const end = head.indexOf('\r\n', at + NAME.length);
    offered = listElements(head.slice(at + NAME.length, end < 0 ? head.length : end), offered, true);
  }
  return offered !== null && offered.includes(protocol);
}

/** The body of a complete chunked encoding in `buf`, or null when it is not complete yet. */
function dechunk(buf: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) return Buffer.alloc(0);
    if (size === 0) return Buffer.concat(parts);
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
