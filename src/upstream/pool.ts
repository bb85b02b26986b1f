// Owns the keep-alive connections of one worker to one backend: hands out an idle connection
// (most recently used first, so the rest can time out) or opens a new one, and closes
// connections idle longer than `timeouts.idle` from one coarse sweep per worker.

import { coarseNow } from '../clock.js';
import { UpstreamConnection, type ConnectionOwner, type Exchange } from './connection.js';
import type { UpstreamTls } from './tls.js';

const MAX_IDLE = 1024;

export interface UpstreamPoolOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** https:// backends; null (or absent): plain HTTP. */
  readonly tls?: UpstreamTls | null;
}

export class UpstreamPool implements ConnectionOwner {
  readonly host: string;
  readonly port: number;
  connectTimeoutMs: number;
  private idleTimeoutMs: number;
  tls: UpstreamTls | null;
  /** The last session a backend handed out (TLS 1.3 tickets): new connections resume it. */
  tlsSession: Buffer | undefined = undefined;
  /** Set when a reload removed the backend: connections close as their requests end. */
  retired = false;
  private readonly idle: UpstreamConnection[] = [];
  /** Every open connection, idle or busy, so shutdown can close them all. */
  private readonly open = new Set<UpstreamConnection>();

  constructor(host: string, port: number, opts: UpstreamPoolOptions) {
    this.host = host;
    this.port = port;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    this.tls = opts.tls ?? null;
  }

  /** A reload may change the timeouts and TLS settings; connections keep serving. */
  configure(opts: UpstreamPoolOptions): void {
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    // new TLS settings (a reload re-reads the files): new connections use them, without the old
    // session; open connections carry on with theirs
    const tls = opts.tls ?? null;
    if (tls !== this.tls) this.tlsSession = undefined;
    this.tls = tls;
    this.retired = false;
  }

  /** The backend left the config: close idle connections now, busy ones when they finish. */
  retire(): void {
    this.retired = true;
    this.closeIdle();
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Attach `exchange` to a connection; it is told `onUpstreamReady` or `onUpstreamError`. */
  acquire(exchange: Exchange, headRequest: boolean, fresh = false): void {
    if (!fresh) {
      const conn = this.idle.pop();
      if (conn !== undefined) {
        conn.assign(exchange, headRequest);
        return;
      }
    }
    const conn = new UpstreamConnection(this);
    this.open.add(conn);
    conn.assign(exchange, headRequest);
  }

  recycle(conn: UpstreamConnection): void {
    if (this.retired || this.idle.length >= MAX_IDLE) {
      conn.destroy();
      return;
    }
    conn.idleSince = coarseNow();
    this.idle.push(conn);
  }

  forget(conn: UpstreamConnection): void {
    this.open.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Close connections idle for longer than the idle timeout (oldest are at the front). */
  sweep(now: number): void {
    const limit = now - this.idleTimeoutMs;
    let n = 0;
    while (n < this.idle.length && this.idle[n]!.idleSince <= limit) n++;
    if (n === 0) return;
    const stale = this.idle.splice(0, n);
    for (const conn of stale) conn.destroy();
  }

  /** Close idle connections now (graceful shutdown). */
  closeIdle(): void {
    const idle = this.idle.splice(0, this.idle.length);
    for (const conn of idle) conn.destroy();
  }

  /** Close every connection (final shutdown). */
  closeAll(): void {
    this.closeIdle();
    for (const conn of this.open) conn.destroy();
    this.open.clear();
  }
}
