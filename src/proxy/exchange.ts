// Owns the mechanism of one proxied request: the phases in order (policy in phases.ts, Pingora's
// ProxyHttp), the wait for an in-flight slot, the request body streamed to the backend and the
// response streamed back with backpressure both ways, deadlines, the one repeat of a request whose
// kept-alive connection turned out stale, retries on another backend, error answers (lingering
// close while a rejected body is still arriving) and cut responses. Free of any front server: the
// client side is a Downstream.
//
//   start (in the front's handler):  requestFilter -> upstreamRequest -> selectBackend (or queue)
//   upstream ready:                   request head and body
//   response head:                    responseFilter, then the body
//   any failure:                      failToProxy, then a retry, an answer or a cut
//   end, always once:                 logging
//
// A phase may answer without a backend (a cache hit: requestFilter ends the request with
// `answered`), hold the request (`park`, then `proceed`), tee the response body (`tee`), answer
// the client itself and let the backend's answer run into another Downstream (`redirectAnswer`),
// or answer instead of an error (`errorFallback`).

import { performance } from 'node:perf_hooks'; // a module binding: the global is an accessor, looked up per use
import { NONE } from '../balancer/types.js';
import { ERRORS, ProxyError, statusFor, statusLine, type ErrorCode } from '../errors.js';
import { PoolEvent } from '../shared/layout.js';
import type { Exchange, UpstreamConnection } from '../upstream/connection.js';
import { Framing, type ResponseHead } from '../upstream/response-parser.js';
import type { Expiring, Generation, Waiter, WorkerContext } from './context.js';
import type { Downstream } from './downstream.js';
import type { ProxyPhases } from './phases.js';
import type { CacheRequest } from '../cache/phases.js';
import type { CacheKey } from '../cache/store.js';

/** `total` once a bodiless response was ended. */
const ENDED = -2;

/** How long a rejected request body is read before the answer is sent and the connection cut. */
const LINGER_MS = 5_000;

/** Request-body bytes waiting in user space (for the upstream to be ready, or for its socket to
 * drain) above which the client is paused. */
const BODY_QUEUE_LIMIT = 256 * 1024;

export const enum Phase {
  Sending = 0, // waiting for or writing to the upstream
  Responding = 1, // response head written to the client, body streaming
  Done = 2,
  Queued = 3, // waiting for a free in-flight slot
  Parked = 4, // held by a phase (a cache miss waiting for another request's fill)
}

/** Receives the response body as it passes (a cache fill), and its end. */
export interface ResponseTee {
  chunk(bytes: Uint8Array): void;
  /** The body is whole. */
  end(): void;
  /** The request ended: drop whatever was not ended. */
  drop(): void;
}

function isIdempotent(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'PUT' || method === 'DELETE';
}

/**
 * One request. Its fields are read (and the request-scoped ones set) by the phases; everything
 * else about them is the engine's.
 */
export class ProxyExchange implements Exchange, Expiring, Waiter {
  readonly ctx: WorkerContext;
  readonly phases: ProxyPhases;
  /** The config generation this request started in; it finishes in it. */
  readonly gen: Generation;
  /** The client; a phase that answered it itself points this elsewhere (redirectAnswer). */
  down: Downstream;
  readonly method: string;
  readonly path: string;
  readonly idempotent: boolean;
  /** When the request arrived (ms, performance.now), or 0 when the access log is off. */
  readonly started: number;
  // ---- set by requestFilter / upstreamRequest
  /** The upstream request head, ending with its blank line. */
  head = '';
  requestId = '';
  /** The client's address as text ('' when no pool or header needs it). */
  remote = '';
  hasBody = false;
  chunkedBody = false;
  /** uWS ends the connection after this answer (the client's Connection field): say so in it. */
  clientCloses = false;
  pool = -1;
  /** Consistent-hash key hash (-1: none) and sticky cookie value (null: none) of the request. */
  hash = -1;
  stickyCookie: string | null = null;
  /** The cache's state for this request (cache/phases.ts); null when the cache is not involved. */
  cache: CacheRequest | null = null;
  /** The cache's result for the access log and metrics (cache/store.ts Result), -1: none. */
  cacheResult = -1;
  /** Receives the response body as it streams; null: nobody. */
  tee: ResponseTee | null = null;
  /** The key whose stored answers this unsafe request invalidates once answered without error. */
  invalidates: CacheKey | null = null;
  // ---- the attempts
  phase = Phase.Sending;
  backend = NONE;
  /** Backends tried so far, and the last one that failed (never picked twice in a row). */
  attempts = 0;
  lastFailed = NONE;
  lastError: ProxyError | null = null;
  /** When the current attempt's backend was picked (ms, performance.now), for its latency. */
  private sentAt = 0;
  /** ms from picking the backend to its response headers (-1: none arrived). */
  upstreamMs = -1;
  // ---- the outcome, for logging
  status = 0;
  /** The error code the request ended with; null when it ended well. */
  code: ErrorCode | null = null;
  bytesIn = 0;
  bytesOut = 0;
  // ---- streaming state
  private aborted = false;
  private conn: UpstreamConnection | null = null;
  /** Request body chunks read before the upstream was ready. */
  private queue: Buffer[] | null = null;
  private queued = 0;
  private bodyDone = false;
  bodyStarted = false;
  private clientPaused = false;
  /** Content-Length of the response when known; -1 streams with chunked encoding. */
  private total = -1;
  private pending: Buffer | null = null;
  /**
   * Chunks of a response without a length that may not be written yet, copied: those that arrive
   * while the client is backed up, and those that do not fit in the current batch. uWS drops a
   * write that overflows its cork buffer when the socket cannot take the corked bytes (uncork's
   * early return), which cut chunks out of chunked bodies under load; so a chunk is written in a
   * batch only when it fits (Downstream.writeFits), else in a cork of its own after the batch.
   */
  private held: Buffer[] | null = null;
  /** The backend's response ended while chunks were held: end it once they are written. */
  private endHeld = false;
  private pendingOffset = 0;
  private upstreamPaused = false;
  private staleRetried = false;
  private finished = false;
  /** Error answer held while a rejected request body is read and discarded. */
  private lingering: string | null = null;
  deadline = 0;
  watchPrev: Expiring | null = null;
  watchNext: Expiring | null = null;

  constructor(ctx: WorkerContext, phases: ProxyPhases, down: Downstream) {
    this.ctx = ctx;
    this.phases = phases;
    this.gen = ctx.current;
    this.down = down;
    down.onAborted(() => {
      try {
        this.onClientAborted();
      } catch (e) {
        ctx.log.error({ err: e, reqId: this.requestId }, 'internal error on client abort');
      }
    });
    ctx.requestStarted(this.gen);
    this.started = ctx.accessLog ? performance.now() : 0;
    this.method = down.method();
    this.idempotent = isIdempotent(this.method);
    this.path = down.url();
  }

  /** The phases that run while the front's handler does (the request head is readable only then). */
  start(): void {
    const phases = this.phases;
    const refused = phases.requestFilter(this, this.down);
    // registered before any early answer but a refusal: a rejected body is still read (see fail)
    if (this.hasBody && (refused === null || ERRORS[refused.code].connection === 'keep')) {
      this.down.onData((chunk, isLast) => {
        try {
          this.onClientData(chunk, isLast);
        } catch (e) {
          this.internalError(e);
        }
      });
    }
    if (refused !== null) {
      this.fail(refused);
      return;
    }
    if (this.phase !== Phase.Sending) return; // answered (a cache hit) or parked by a phase
    this.sendOrQueue();
  }

  /** A phase's `park` is over: go to a backend. */
  proceed(): void {
    this.phase = Phase.Sending;
    this.sendOrQueue();
  }

  /** Go to a backend: now, or queued for a slot. */
  private sendOrQueue(): void {
    if (this.pickAndSend()) return;
    // every backend is at max_connections_per_backend: wait for a slot, bounded
    const gen = this.gen;
    this.phase = Phase.Queued;
    gen.state.countPoolEvent(this.pool, PoolEvent.Queued);
    gen.queues.enqueue(this.pool, this);
    this.ctx.watch(this, gen.config.timeouts.queueMs);
  }

  /**
   * Pick a backend (not the one that just failed) and send the request to it. Returns false
   * only when every available backend is full and the request may wait; every other outcome
   * (sent, or failed with its status) returns true.
   */
  private pickAndSend(): boolean {
    const gen = this.gen;
    const backend = this.phases.selectBackend(this);
    if (backend === NONE) {
      if (this.lastError !== null) {
        this.fail(this.lastError); // no other backend to retry on
      } else if (gen.config.limits.maxConnectionsPerBackend > 0 && gen.state.poolHasAvailable(this.pool)) {
        return false;
      } else {
        gen.state.countPoolEvent(this.pool, PoolEvent.NoBackend);
        this.fail(new ProxyError('CLB_ERR_NO_BACKEND', 'no backend available'));
      }
      return true;
    }
    this.backend = backend;
    this.attempts++;
    this.sentAt = performance.now();
    gen.state.countRequest(backend);
    gen.upstreams[backend]!.acquire(this, this.method === 'HEAD');
    return true;
  }

  /** A phase holds the request (it will `proceed` or answer it); the client may still abort. */
  park(): void {
    this.phase = Phase.Parked;
  }

  /** A phase answered the request itself (all of it): the request is over. */
  answered(status: number, bytesOut: number): void {
    this.status = status;
    this.bytesOut = bytesOut;
    this.finish();
  }

  /**
   * A phase is answering the client itself while a response head is being handled (a
   * revalidated or stale-if-error answer): the backend's answer now goes to `sink`.
   */
  redirectAnswer(sink: Downstream): void {
    this.down = sink;
  }

  /** A phase's own answer, under way after the request's phase (a cache hit under backpressure). */
  answering(status: number): void {
    this.status = status;
    this.phase = Phase.Responding;
  }

  // ---- Waiter: queued for a free slot
  get waiting(): boolean {
    return this.phase === Phase.Queued;
  }
  retryPick(): boolean {
    if (this.phase !== Phase.Queued) return true;
    // the queue deadline goes first: sending may arm the response deadline synchronously (an idle
    // keep-alive connection is ready at once)
    const queueDeadline = this.deadline;
    this.ctx.unwatch(this);
    this.phase = Phase.Sending;
    if (this.pickAndSend()) return true;
    this.phase = Phase.Queued;
    this.ctx.watchUntil(this, queueDeadline);
    return false;
  }

  /** An exception escaped a phase: 500 (or a cut connection), logged with the request id. */
  internalError(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.ctx.log.error({ reqId: this.requestId, err: e }, 'internal error: ' + message);
    this.fail(new ProxyError('CLB_ERR_INTERNAL', 'internal error: ' + message));
  }

  // ---- the request to the backend
  onUpstreamReady(conn: UpstreamConnection): void {
    if (this.phase === Phase.Done) {
      conn.abandon(this);
      return;
    }
    this.conn = conn;
    const head = this.phases.upstreamRequest(this);
    if (!this.hasBody) {
      conn.writeHead(head);
      conn.endRequest();
      this.ctx.watch(this, this.gen.config.timeouts.responseMs);
      return;
    }
    const socket = conn.socket;
    this.ctx.watch(this, this.gen.config.timeouts.responseMs); // re-armed while the body moves
    socket.cork();
    conn.write(head);
    this.bodyStarted = true;
    const queue = this.queue;
    this.queue = null;
    this.queued = 0;
    if (queue !== null) for (const chunk of queue) conn.writeBody(chunk, this.chunkedBody, undefined);
    if (this.bodyDone) this.endBody();
    socket.uncork();
    if (socket.writableLength > BODY_QUEUE_LIMIT) this.pauseClient();
    else if (this.clientPaused) this.resumeClient();
  }

  private onClientData(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.lingering !== null) {
      if (isLast) this.endLinger(false);
      return;
    }
    if (this.phase === Phase.Done) return;
    const n = chunk.byteLength;
    this.bytesIn += n;
    if (this.bytesIn > this.gen.config.limits.maxBodyBytes) {
      this.fail(new ProxyError('CLB_ERR_BODY_TOO_LARGE', 'body over limits.max_body'));
      return;
    }
    if (isLast) this.bodyDone = true;
    const conn = this.conn;
    if (conn === null && this.bodyStarted) return; // the backend already answered: nobody reads it
    // the front lends the bytes only for this call: copy them
    if (conn === null || !this.bodyStarted) {
      if (n > 0) {
        const copy = Buffer.allocUnsafe(n); // held until the upstream is ready: not slab memory
        copy.set(new Uint8Array(chunk));
        (this.queue ??= []).push(copy);
        this.queued += n;
        if (this.queued > BODY_QUEUE_LIMIT) this.pauseClient();
      }
      return;
    }
    const socket = conn.socket;
    this.deadline = this.ctx.now + this.gen.config.timeouts.responseMs;
    socket.cork();
    if (n > 0) {
      const slabs = this.ctx.bodySlabs;
      const copy = slabs.copy(chunk);
      conn.writeBody(copy, this.chunkedBody, slabs.lastRelease);
    }
    if (isLast) this.endBody();
    socket.uncork();
    // Node's write() says false for any chunk over 16 KiB even when the kernel took it all;
    // what is still queued in user space is what must pause the client
    if (socket.writableLength > BODY_QUEUE_LIMIT) this.pauseClient();
  }

  private endBody(): void {
    const conn = this.conn!;
    conn.endBody(this.chunkedBody);
    if (this.phase === Phase.Sending) this.ctx.watch(this, this.gen.config.timeouts.responseMs);
  }

  private pauseClient(): void {
    if (this.clientPaused || this.aborted) return;
    this.clientPaused = true;
    this.down.pause();
  }
  private resumeClient(): void {
    if (!this.clientPaused || this.aborted) return;
    this.clientPaused = false;
    this.down.resume();
  }

  onUpstreamDrain(): void {
    if (this.phase !== Phase.Done) this.resumeClient();
  }

  batch(fn: () => void): void {
    if (this.aborted || this.phase === Phase.Done) {
      fn();
      return;
    }
    this.down.cork(fn);
    if (this.held !== null && !this.upstreamPaused && !this.aborted && !this.writeHeld()) this.pauseUpstream();
  }

  onDeadline(): void {
    if (this.lingering !== null) {
      this.endLinger(true); // the client kept sending too long: answer and cut
      return;
    }
    if (this.phase === Phase.Queued) {
      this.gen.state.countPoolEvent(this.pool, PoolEvent.QueueTimeout);
      this.phase = Phase.Sending; // leaves the queue (it drops answered requests)
      this.fail(new ProxyError('CLB_ERR_QUEUE_TIMEOUT', 'every backend stayed at max_connections_per_backend for timeouts.queue'));
    } else if (this.phase === Phase.Sending) {
      this.fail(new ProxyError('CLB_ERR_RESPONSE_TIMEOUT', 'no response within timeouts.response'));
    } else if (this.phase === Phase.Responding) {
      this.fail(new ProxyError('CLB_ERR_RESPONSE_TIMEOUT', 'backend silent mid-body for timeouts.response'));
    }
  }

  // ---- the response
  onResponseHead(head: ResponseHead): void {
    if (this.phase !== Phase.Sending) return;
    // from here the deadline is the longest silence of the backend mid-body (nginx's
    // proxy_read_timeout): still watched, pushed forward by every read
    this.deadline = this.ctx.now + this.gen.config.timeouts.responseMs;
    this.phase = Phase.Responding;
    this.status = head.status;
    this.upstreamMs = performance.now() - this.sentAt;
    this.phases.responseFilter(this, head, this.down);
    const down = this.down; // a phase that answered the client itself has pointed it elsewhere
    const length = head.length;
    if (head.framing === Framing.None) {
      const status = head.status;
      if ((this.method === 'HEAD' || status === 304) && length >= 0) down.endWithoutBody(length);
      else if (this.method === 'HEAD' || status === 204 || status === 304) down.endWithoutBody();
      else down.end();
      this.total = ENDED;
      return; // onResponseEnd follows
    }
    this.total = head.framing === Framing.Length ? length : -1;
  }

  onResponseBody(chunk: Uint8Array): void {
    if (this.phase !== Phase.Responding) return;
    if (this.tee !== null) this.tee.chunk(chunk);
    this.bytesOut += chunk.length;
    this.deadline = this.ctx.now + this.gen.config.timeouts.responseMs;
    const down = this.down;
    if (this.total >= 0) {
      if (this.bytesOut === this.total && chunk.length === this.total) {
        down.end(chunk); // the whole body in one read: nothing to wait for (the front keeps what the socket refuses)
        return;
      }
      const offset = down.writeOffset();
      const [ok, done] = down.tryEnd(chunk, this.total);
      if (!done && !ok) {
        this.pending = Buffer.from(chunk); // the chunk is a view of the shared read buffer
        this.pendingOffset = offset;
        this.pauseUpstream();
      }
    } else if (this.held !== null || this.upstreamPaused || !down.writeFits(chunk.length)) {
      (this.held ??= []).push(Buffer.from(chunk)); // a view of the shared read buffer: copied
    } else if (!down.write(chunk)) {
      this.pauseUpstream();
    }
  }

  /**
   * Writes the held chunks, each in a cork of its own (see `held`), and ends the response when
   * the backend's did; false when the client backed up again (the rest waits for onWritable).
   */
  private writeHeld(): boolean {
    const held = this.held!;
    const down = this.down;
    let ok = true;
    const writeOne = (): void => {
      ok = down.write(held.shift()!);
    };
    while (held.length > 0) {
      down.cork(writeOne);
      if (!ok) return false;
    }
    this.held = null;
    if (this.endHeld) {
      this.endHeld = false;
      down.cork(() => down.end());
      this.finish();
    }
    return true;
  }

  private pauseUpstream(): void {
    if (this.upstreamPaused) return;
    this.upstreamPaused = true;
    this.ctx.unwatch(this); // a slow client is not the backend's silence
    this.conn?.pauseReading(this);
    this.down.onWritable((offset) => {
      try {
        return this.onClientWritable(offset);
      } catch (e) {
        this.internalError(e);
        return true;
      }
    });
  }

  private onClientWritable(offset: number): boolean {
    if (this.phase === Phase.Done && this.pending === null && this.held === null) return true;
    if (this.held !== null) {
      if (!this.writeHeld()) return false;
      if (this.phase === Phase.Done) return true; // the response ended with the held chunks
    }
    const pending = this.pending;
    if (pending !== null) {
      const [ok, done] = this.down.tryEnd(pending.subarray(offset - this.pendingOffset), this.total);
      if (!ok && !done) return false;
      this.pending = null;
      if (done) {
        if (this.phase !== Phase.Done) this.finish();
        return true;
      }
    }
    this.upstreamPaused = false;
    this.conn?.resumeReading(this);
    this.ctx.watch(this, this.gen.config.timeouts.responseMs);
    return true;
  }

  onResponseEnd(): void {
    if (this.phase !== Phase.Responding) return;
    if (this.tee !== null) this.tee.end();
    // The connection is done with this exchange: back in the pool, or to be closed when the
    // backend answered before the request body ended. Drop it either way.
    const conn = this.detach();
    if (conn !== null && this.hasBody && !this.bodyDone) conn.abandon(this);
    if (this.total === -1) {
      if (this.held !== null) {
        this.endHeld = true; // the held chunks go first: ended by writeHeld
        return;
      }
      this.down.end();
    } else if (this.pending !== null) {
      return; // the last bytes are still queued for the client: finished from onClientWritable
    }
    this.finish();
  }

  onResponseInvalid(reason: string): void {
    this.detach(); // the connection closed itself
    this.fail(new ProxyError('CLB_ERR_INVALID_RESPONSE', 'invalid response from backend: ' + reason));
  }

  onUpstreamError(err: ProxyError): void {
    const conn = this.detach();
    if (this.phase === Phase.Done) return;
    // A kept-alive connection the backend closed while we reused it: nothing was answered and
    // a request without body is repeated on a fresh connection, once.
    if (this.phase === Phase.Sending && conn !== null && conn.reused && conn.received === 0 && !this.hasBody && this.idempotent && !this.staleRetried) {
      this.staleRetried = true;
      this.ctx.unwatch(this);
      this.gen.upstreams[this.backend]!.acquire(this, this.method === 'HEAD', true);
      return;
    }
    if (this.phase === Phase.Sending && !this.aborted && this.phases.shouldRetry(this, err)) {
      this.retryElsewhere(err);
      return;
    }
    this.fail(err);
  }

  private retryElsewhere(err: ProxyError): void {
    const failed = this.backend;
    this.phases.attemptFailed(this, err);
    this.gen.state.releaseInflight(failed);
    this.backend = NONE;
    this.lastFailed = failed;
    this.lastError = err;
    this.ctx.unwatch(this);
    this.ctx.slotFreed();
    this.pickAndSend(); // sends elsewhere, or answers lastError when no other backend is free
  }

  // ---- failure: an answer, or a cut once the response has begun
  /**
   * What becomes of the client's connection is data on the error (errors.ts). A connection that
   * is kept while a request body is still arriving reads and discards that body first, and the
   * answer goes out when it ends (nginx's lingering close): answering and closing at once resets
   * the connection under a client that is still sending, and most clients then never read the
   * status.
   */
  private fail(err: ProxyError): void {
    if (this.phase === Phase.Done) return;
    const ctx = this.ctx;
    const started = this.phase === Phase.Responding;
    this.code = err.code;
    if (err !== this.lastError) this.phases.attemptFailed(this, err); // a retry already counted lastError
    ctx.unwatch(this);
    this.detach()?.abandon(this);
    // Done before touching the client: close() calls onAborted synchronously, which must find
    // the request already ended
    this.phase = Phase.Done;
    if (!started && !this.aborted && this.phases.errorFallback(this, err)) {
      this.phases.failToProxy(this, err, false);
      this.finish();
      return;
    }
    if (!this.aborted) {
      if (started) {
        this.down.close(); // a truncated response must not look complete
      } else {
        this.status = statusFor(err.code);
        const line = statusLine(err.code);
        const after = ERRORS[err.code].connection;
        if (after === 'keep' && this.hasBody && !this.bodyDone) {
          this.lingering = line;
          this.queue = null;
          this.resumeClient();
          ctx.watch(this, LINGER_MS);
        } else if (after === 'keep') {
          this.respondError(line);
        } else {
          this.down.answerAndClose(line, this.requestId, this.clientCloses, after === 'refuse');
        }
      }
    }
    this.phases.failToProxy(this, err, started);
    this.finish();
  }

  private respondError(line: string): void {
    const down = this.down;
    down.cork(() => {
      down.writeHead(line);
      down.writeHeader('content-type', 'text/plain; charset=utf-8');
      down.writeHeader('x-request-id', this.requestId);
      if (this.ctx.draining || this.clientCloses) down.writeHeader('connection', 'close');
      down.end(line + '\n');
    });
  }

  /** The rejected body has ended (or taken too long): send the held answer. */
  private endLinger(closeConnection: boolean): void {
    const line = this.lingering!;
    this.lingering = null;
    this.ctx.unwatch(this);
    if (this.aborted) return;
    if (closeConnection) this.down.answerAndClose(line, this.requestId, this.clientCloses, false);
    else this.respondError(line);
  }

  private onClientAborted(): void {
    this.aborted = true;
    if (this.lingering !== null) {
      this.lingering = null;
      this.ctx.unwatch(this);
    }
    if (this.phase === Phase.Done) return;
    this.detach()?.abandon(this); // cancels the upstream request
    this.ctx.unwatch(this);
    // the drain's time is over and the worker closed the connection: not the client's doing
    const err = this.ctx.cutting
      ? new ProxyError('CLB_ERR_DRAIN_TIMEOUT', 'timeouts.drain is over: request cut')
      : new ProxyError('CLB_ERR_CLIENT_ABORTED', 'client closed the connection');
    const started = this.status !== 0;
    this.code = err.code;
    if (!started) this.status = statusFor(err.code);
    this.phases.failToProxy(this, err, started);
    this.finish();
  }

  /** Take the connection away from this exchange (it is no longer to be touched by it). */
  private detach(): UpstreamConnection | null {
    const conn = this.conn;
    this.conn = null;
    return conn;
  }

  /** The backend that answered or failed last, or NONE. */
  get lastBackend(): number {
    return this.backend !== NONE ? this.backend : this.lastFailed;
  }

  // ---- the end, always once
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.phase = Phase.Done;
    const ctx = this.ctx;
    if (this.lingering === null) ctx.unwatch(this);
    if (this.backend !== NONE) {
      this.gen.state.releaseInflight(this.backend);
      ctx.slotFreed();
    }
    this.queue = null;
    this.pending = null;
    this.held = null;
    if (this.tee !== null) this.tee.drop();
    this.phases.logging(this);
    ctx.requestFinished(this.gen);
  }
}
