// Owns one keep-alive HTTP/1.1 connection to a backend, plain or TLS (https:// backends): writes
// a request, parses the response strictly, reports to the exchange that holds it, and decides
// whether the connection may be reused. A connection serves one exchange at a time (no
// pipelining). A TLS connection resumes the pool's last session, and a handshake that fails
// (certificate not verified, wrong name, no shared version) is CLB_ERR_TLS with its reason.

import net from 'node:net';
import tls from 'node:tls';
import { ProxyError } from '../errors.js';
import { writeDirect } from './direct-write.js';
import { ResponseParser, type ResponseHead, type ResponseSink } from './response-parser.js';
import { READ_BUFFER } from './read-buffer.js';
import { tlsFailure, type UpstreamTls } from './tls.js';

/** What a request in flight must handle; implemented by the proxy's per-request object. */
export interface Exchange extends ResponseSink {
  /** The connection is ready for the request head. */
  onUpstreamReady(conn: UpstreamConnection): void;
  /** Connect failure, reset, or close before the response was complete. */
  onUpstreamError(err: ProxyError): void;
  /** The request body may be written again after `write` returned false. */
  onUpstreamDrain(): void;
  /** Run `fn` with the client's writes batched into one send. */
  batch(fn: () => void): void;
}

export interface ConnectionOwner {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  /** null: plain HTTP. */
  readonly tls: UpstreamTls | null;
  /** The last TLS session a backend handed out: new connections resume it. */
  tlsSession: Buffer | undefined;
  recycle(conn: UpstreamConnection): void;
  forget(conn: UpstreamConnection): void;
}

export class UpstreamConnection implements ResponseSink {
  readonly socket: net.Socket;
  private readonly owner: ConnectionOwner;
  private readonly parser: ResponseParser;
  private exchange: Exchange | null = null;
  private connected = false;
  private connectTimer: NodeJS.Timeout | null = null;
  private keepAlive = false;
  private requestComplete = false;
  private responseComplete = false;
  /** The read being parsed: READ_BUFFER (plain) or the TLS socket's decrypted chunk. */
  private readBuffer: Buffer = READ_BUFFER;
  /** Bytes in readBuffer of the read being parsed. */
  private readLength = 0;
  /** TLS: the TCP connection is up (a failure after it is the handshake's). */
  private tcpConnected = false;
  /** The socket's last error, for the reason of a failed handshake. */
  private lastError: Error | null = null;
  private closed = false;
  /** True when the connection served an earlier request: a reset before any byte may be stale. */
  reused = false;
  /** Response bytes received for the current exchange. */
  received = 0;
  /** Coarse time the connection went idle (ms), for the idle sweep. */
  idleSince = 0;

  constructor(owner: ConnectionOwner) {
    this.owner = owner;
    this.parser = new ResponseParser(this);
    this.parseCurrent = this.parseCurrent.bind(this);
    const secure = owner.tls;
    let socket: net.Socket;
    if (secure === null) {
      // Reads land in one buffer shared by the worker's connections (onread): no Buffer, no
      // backing store and no stream 'data' event per read. Everything that keeps response bytes
      // beyond the read copies them (the parser's carried-over head, a body chunk the client could
      // not take yet).
      socket = net.connect({
        host: owner.host,
        port: owner.port,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number) => {
            this.onData(n);
            return true;
          },
        },
      });
      socket.on('connect', () => this.onConnect());
    } else {
      // A TLSSocket takes no onread buffer: its decrypted bytes come as 'data' chunks
      const t = tls.connect({
        host: owner.host,
        port: owner.port,
        servername: secure.servername,
        secureContext: secure.secureContext,
        rejectUnauthorized: secure.verify,
        session: owner.tlsSession,
        ALPNProtocols: ['http/1.1'],
      });
      t.setNoDelay(true);
      t.on('connect', () => (this.tcpConnected = true));
      t.on('secureConnect', () => this.onConnect());
      t.on('session', (session: Buffer) => (owner.tlsSession = session));
      t.on('data', (chunk: Buffer) => this.onChunk(chunk));
      socket = t;
    }
    this.socket = socket;
    socket.on('drain', () => this.exchange?.onUpstreamDrain());
    socket.on('error', (err) => (this.lastError = err)); // 'close' follows and decides
    socket.on('close', () => this.onClose());
    this.connectTimer = setTimeout(() => this.onConnectTimeout(), owner.connectTimeoutMs);
  }

  /** Hand the connection to an exchange; `onUpstreamReady` fires once it is connected. */
  assign(exchange: Exchange, headRequest: boolean): void {
    this.exchange = exchange;
    this.requestComplete = false;
    this.responseComplete = false;
    this.received = 0;
    this.parser.expect(this, headRequest);
    if (this.connected) exchange.onUpstreamReady(this);
  }

  /** `written` runs once the bytes were handed to the kernel, or the write failed. */
  write(data: string | Uint8Array, written?: () => void): boolean {
    return this.socket.write(data, written);
  }

  /** The whole request when it has no body: written straight to a plain socket (direct-write.ts). */
  writeHead(head: string): void {
    if (this.owner.tls === null) writeDirect(this.socket, head);
    else this.socket.write(head);
  }

  /** A request body chunk; with `chunked`, framed as one chunk. `written` as for write. */
  writeBody(chunk: Uint8Array, chunked: boolean, written: (() => void) | undefined): void {
    const socket = this.socket;
    if (!chunked) {
      socket.write(chunk, written);
      return;
    }
    socket.write(chunk.length.toString(16) + '\r\n');
    socket.write(chunk, written);
    socket.write('\r\n');
  }

  /** The request body is complete (the last chunk for a chunked body); so is the request. */
  endBody(chunked: boolean): void {
    if (chunked) this.socket.write('0\r\n\r\n');
    this.endRequest();
  }

  /** The whole request (head and body) has been written. */
  endRequest(): void {
    this.requestComplete = true;
    if (this.responseComplete) this.finishExchange();
  }

  // The calls below take the exchange that makes them: once a connection has gone back to the
  // pool it may already serve another exchange, which a late call from the old one must not touch.
  pauseReading(by: Exchange): void {
    if (this.exchange === by) this.socket.pause();
  }
  resumeReading(by: Exchange): void {
    if (this.exchange === by) this.socket.resume();
  }
  /** Drop the connection (client went away, timeout, protocol error). No callback follows. */
  abandon(by: Exchange): void {
    if (this.exchange !== by) return;
    this.exchange = null;
    if (!this.closed) this.socket.destroy();
  }

  /** Close the connection whoever holds it (pool shutdown, idle sweep). No callback follows. */
  destroy(): void {
    this.exchange = null;
    if (!this.closed) this.socket.destroy();
  }

  private onConnect(): void {
    this.connected = true;
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    this.exchange?.onUpstreamReady(this);
  }

  private onConnectTimeout(): void {
    this.connectTimer = null;
    const ex = this.exchange;
    this.exchange = null;
    this.socket.destroy();
    ex?.onUpstreamError(
      new ProxyError('CLB_ERR_CONNECT_TIMEOUT', `connect to ${this.owner.host}:${this.owner.port} timed out`),
    );
  }

  /** A TLS socket's decrypted bytes: parsed in place, like a plain read. */
  private onChunk(chunk: Buffer): void {
    this.readBuffer = chunk;
    this.onData(chunk.length);
    this.readBuffer = READ_BUFFER;
  }

  private onData(n: number): void {
    const ex = this.exchange;
    if (ex === null) {
      // bytes on an idle connection belong to no request: never reuse it
      this.socket.destroy();
      return;
    }
    this.received += n;
    this.readLength = n;
    try {
      ex.batch(this.parseCurrent);
    } catch (e) {
      // a bug must not take the worker down: drop this connection and fail its request
      this.exchange = null;
      this.socket.destroy();
      ex.onUpstreamError(new ProxyError('CLB_ERR_INTERNAL', 'internal error: ' + (e instanceof Error ? e.message : String(e))));
    }
  }

  private parseCurrent(): void {
    const extra = this.parser.execute(this.readBuffer, this.readLength);
    if (extra > 0) {
      // bytes after a complete response: the backend is confused; never reuse the connection
      this.keepAlive = false;
      this.socket.destroy();
    }
  }

  private onClose(): void {
    this.closed = true;
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    this.owner.forget(this);
    const ex = this.exchange;
    if (ex === null) return;
    if (!this.connected) {
      this.exchange = null;
      const where = `${this.owner.host}:${this.owner.port}`;
      ex.onUpstreamError(
        this.tcpConnected
          ? new ProxyError('CLB_ERR_TLS', `TLS handshake with ${where} failed: ${tlsFailure(this.lastError)}`)
          : new ProxyError('CLB_ERR_CONNECT', `connect to ${where} failed`),
      );
      return;
    }
    const outcome = this.parser.finish(); // may deliver the end of a close-delimited body
    if (outcome === 'complete' || this.responseComplete) return;
    this.exchange = null;
    ex.onUpstreamError(
      this.parser.inBody
        ? new ProxyError('CLB_ERR_RESET', 'backend closed the connection mid-body', 'never')
        : new ProxyError('CLB_ERR_RESET', 'backend closed the connection before responding'),
    );
  }

  private finishExchange(): void {
    this.exchange = null;
    if (this.keepAlive && !this.closed) {
      this.reused = true;
      // the exchange may have paused reading for a slow client; an idle connection must read,
      // to notice the backend closing it
      if (this.socket.isPaused()) this.socket.resume();
      this.owner.recycle(this);
    } else if (!this.closed) {
      this.socket.destroy();
    }
  }

  // ---- ResponseSink: parser events, passed on to the exchange
  onResponseHead(head: ResponseHead): void {
    this.keepAlive = head.keepAlive;
    this.exchange?.onResponseHead(head);
  }
  onResponseBody(chunk: Uint8Array): void {
    this.exchange?.onResponseBody(chunk);
  }
  onResponseEnd(): void {
    this.responseComplete = true;
    const ex = this.exchange;
    // A backend that answers before taking the whole body leaves the connection in an unknown
    // state: it is closed when the exchange ends the request.
    if (this.requestComplete) this.finishExchange();
    else this.keepAlive = false;
    ex?.onResponseEnd();
  }
  onResponseInvalid(reason: string): void {
    const ex = this.exchange;
    this.exchange = null;
    this.keepAlive = false;
    this.socket.destroy();
    ex?.onResponseInvalid(reason);
  }
}
