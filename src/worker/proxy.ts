// Owns one proxied request, as a short list of phases with safe defaults (Pingora's ProxyHttp):
//   1. accept: copy what is needed from the uWS request, synchronously; register onAborted first
//   2. pick upstream: route -> pool -> balancer (holds an in-flight slot); when every backend is
//      at its in-flight limit, wait in the pool's queue up to timeouts.queue
//   3. send: request head, then the body streamed with backpressure
//   4. respond: status and headers filtered, body streamed back with backpressure
//   5. fail: a retry on another backend when the error says the request may be repeated (the
//      decision is data on the error) and retries and the budget allow; else a status for every
//      error class, or a cut connection once the response has begun
//   6. finish, always once: release the slot, count, log.

import { performance } from 'node:perf_hooks'; // a module binding: the global is an accessor, looked up per use
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ERRORS, ProxyError, statusFor, statusLine, type ErrorCode } from '../errors.js';
import { NONE, type PickContext } from '../balancer/types.js';
import type { UpstreamConnection, Exchange } from '../upstream/connection.js';
import { Framing, type ResponseHead } from '../upstream/response-parser.js';
import { forwardedHead } from './response-head.js';
import { cookieValue, requestHash } from './affinity.js';
import { buildRequestHead, FramingProblem, type ClientHead } from './request-head.js';
import { answerAndClose, setInParse } from './refusal.js';
import { normaliseHost } from './router.js';
import { remoteAddress } from './remote-address.js';
import { FailureKind, PoolEvent } from '../shared/layout.js';
import type { Expiring, Generation, Waiter, WorkerContext } from './context.js';

/** Test hook: a request for exactly this path throws inside request handling (see README). */
const TEST_THROW_PATH = process.env.CORELB_TEST_THROW_PATH ?? null;


/** `total` once a bodiless response was ended. */
const ENDED = -2;

/** How long a rejected request body is read before the answer is sent and the connection cut. */
const LINGER_MS = 5_000;

/** Request-body bytes waiting in user space (for the upstream to be ready, or for its socket to
 * drain) above which the client is paused. */
const BODY_QUEUE_LIMIT = 256 * 1024;

const pickContext: PickContext = { avoid: NONE, maxInflight: 0, hash: -1 };
const clientHead: ClientHead = { head: '', host: '', contentLength: -1, chunked: false, framing: FramingProblem.None, closes: false, requestId: '' };

const FRAMING_REFUSALS: Record<Exclude<FramingProblem, FramingProblem.None>, string> = {
  [FramingProblem.BadLength]: 'invalid Content-Length (not digits, or two different values)',
  [FramingProblem.RepeatedCoding]: 'Transfer-Encoding on more than one line',
  [FramingProblem.LengthAndCoding]: 'both Content-Length and Transfer-Encoding',
  [FramingProblem.UnknownCoding]: 'a transfer coding other than chunked',
};

const enum Phase {
  Sending = 0, // waiting for or writing to the upstream
  Responding = 1, // response head written to the client, body streaming
  Done = 2,
  Queued = 3, // waiting for a free in-flight slot
}

function isIdempotent(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'PUT' || method === 'DELETE';
}

export class ProxyExchange implements Exchange, Expiring, Waiter {
  private readonly ctx: WorkerContext;
  /** The config generation this request started in; it finishes in it. */
  private readonly gen: Generation;
  private readonly res: HttpResponse;
  private readonly method: string;
  private readonly path: string;
  private readonly head: string;
  private readonly requestId: string;
  private readonly hasBody: boolean;
  private readonly chunkedBody: boolean;
  /** uWS ends the connection after this answer (the client's Connection field): say so in it. */
  private readonly clientCloses: boolean;
  private readonly idempotent: boolean;
  private readonly started: number;
  private phase = Phase.Sending;
  private aborted = false;
  private backend = NONE;
  private pool = -1;
  /** Backends tried so far, and the last one that failed (never picked twice in a row). */
  private attempts = 0;
  private lastFailed = NONE;
  private lastError: ProxyError | null = null;
  /** Consistent-hash key hash (-1: none) and sticky cookie value (null: none) of the request. */
  private hash = -1;
  private stickyCookie: string | null = null;
  /** When the current attempt's backend was picked (ms, performance.now), for its latency. */
  private sentAt = 0;
  /** ms from picking the backend to its response headers (-1: none arrived). */
  private upstreamMs = -1;
  private readonly remote: string;
  private conn: UpstreamConnection | null = null;
  /** Request body chunks read before the upstream was ready. */
  private queue: Buffer[] | null = null;
  private queued = 0;
  private bodyDone = false;
  private bodyStarted = false;
  private clientPaused = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private status = 0;
  /** The error code the request ended with (access log); null when it ended well. */
  private code: ErrorCode | null = null;
  /** Content-Length of the response when known; -1 streams with chunked encoding. */
  private total = -1;
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  private upstreamPaused = false;
  private staleRetried = false;
  private finished = false;
  /** Error answer held while a rejected request body is read and discarded. */
  private lingering: string | null = null;
  deadline = 0;
  watchPrev: Expiring | null = null;
  watchNext: Expiring | null = null;

  constructor(ctx: WorkerContext, res: HttpResponse, req: HttpRequest) {
    this.ctx = ctx;
    this.gen = ctx.current;
    this.res = res;
    res.onAborted(() => {
      try {
        this.onClientAborted();
      } catch (e) {
        ctx.log.error({ err: e, reqId: this.requestId }, 'internal error on client abort');
      }
    });
    ctx.requestStarted(this.gen);
    this.started = ctx.accessLog ? performance.now() : 0;
    const method = req.getCaseSensitiveMethod();
    this.method = method;
    this.idempotent = isIdempotent(method);
    const path = req.getUrl();
    this.path = path;
    const remote = this.gen.readsClientAddress ? remoteAddress(res) : '';
    this.remote = remote;
    buildRequestHead(req, method, path, remote, ctx.newRequestId, clientHead);
    this.head = clientHead.head;
    this.requestId = clientHead.requestId;
    this.chunkedBody = clientHead.chunked;
    this.clientCloses = clientHead.closes;
    const length = clientHead.contentLength;
    this.hasBody = length > 0 || clientHead.chunked;
  }

  /** Phases 1 and 2, still inside the uWS handler (`req` is valid only until it returns). */
  start(req: HttpRequest): void {
    const ctx = this.ctx;
    const res = this.res;
    const length = clientHead.contentLength;
    // phase 1 checks: the request as a whole
    const problem = clientHead.framing;
    if (problem !== FramingProblem.None) {
      // the front server framed this request its own way: answer, close, and parse nothing after
      const code = problem === FramingProblem.UnknownCoding ? 'CLB_ERR_UNKNOWN_CODING' : 'CLB_ERR_BAD_REQUEST';
      this.fail(new ProxyError(code, FRAMING_REFUSALS[problem]));
      return;
    }
    // registered before any early answer: a rejected body is still read (see fail)
    if (this.hasBody) {
      res.onData((chunk, isLast) => {
        setInParse(true);
        try {
          this.onClientData(chunk, isLast);
        } catch (e) {
          this.internalError(e);
        }
        setInParse(false);
      });
    }
    const gen = this.gen;
    const maxBody = gen.config.limits.maxBodyBytes;
    if (length > maxBody) {
      this.fail(new ProxyError('CLB_ERR_BODY_TOO_LARGE', `body of ${length} bytes over limits.max_body`));
      return;
    }

    // phase 2: pick upstream
    const pool = gen.router.match(gen.router.needsHost ? normaliseHost(clientHead.host) : '', this.path);
    if (pool < 0) {
      this.fail(new ProxyError('CLB_ERR_NO_ROUTE', 'no route matches'));
      return;
    }
    if (TEST_THROW_PATH !== null && this.path === TEST_THROW_PATH) throw new Error('planted test error (CORELB_TEST_THROW_PATH)');
    this.pool = pool;
    if (gen.affinity[pool]) this.readAffinity(req);
    gen.budgets[pool]!.deposit();
    if (this.pickAndSend()) return;
    // every backend is at max_connections_per_backend: wait for a slot, bounded
    this.phase = Phase.Queued;
    gen.state.countPoolEvent(pool, PoolEvent.Queued);
    gen.enqueue(pool, this);
    ctx.watch(this, gen.config.timeouts.queueMs);
  }

  private readAffinity(req: HttpRequest): void {
    const gen = this.gen;
    const key = gen.hashKeys[this.pool]!;
    if (key !== null) this.hash = requestHash(req, key, this.path, this.remote);
    const sticky = gen.sticky[this.pool]!;
    if (sticky !== null) this.stickyCookie = cookieValue(req.getHeader('cookie'), sticky.cookie);
  }

  /** The backend the request's sticky cookie names, when it may take the request now; else NONE. */
  private stickyPick(): number {
    const gen = this.gen;
    const b = gen.stickyBackend(this.pool, this.stickyCookie!);
    if (b < 0 || b === this.lastFailed || !gen.state.available(b)) return NONE;
    return gen.state.tryAcquireInflight(b, gen.config.limits.maxConnectionsPerBackend) ? b : NONE;
  }

  /**
   * Pick a backend (not the one that just failed) and send the request to it. Returns false
   * only when every available backend is full and the request may wait; every other outcome
   * (sent, or failed with its status) returns true.
   */
  private pickAndSend(): boolean {
    const gen = this.gen;
    const pool = this.pool;
    pickContext.avoid = this.lastFailed;
    pickContext.maxInflight = gen.config.limits.maxConnectionsPerBackend;
    pickContext.hash = this.hash;
    let backend = this.stickyCookie === null ? NONE : this.stickyPick();
    if (backend === NONE) backend = gen.balancers[pool]!.pick(pickContext);
    if (backend === NONE || backend === this.lastFailed) {
      if (backend !== NONE) gen.state.releaseInflight(backend);
      if (this.lastError !== null) {
        this.fail(this.lastError); // no other backend to retry on
      } else if (pickContext.maxInflight > 0 && gen.state.poolHasAvailable(pool)) {
        return false;
      } else {
        gen.state.countPoolEvent(pool, PoolEvent.NoBackend);
        this.fail(new ProxyError('CLB_ERR_NO_BACKEND', 'no backend available'));
      }
      return true;
    }
    if (this.lastError !== null) this.logRetry(backend);
    this.backend = backend;
    this.attempts++;
    this.sentAt = performance.now();
    gen.state.countRequest(backend);
    gen.upstreams[backend]!.acquire(this, this.method === 'HEAD');
    return true;
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

  // ---- phase 3: send
  onUpstreamReady(conn: UpstreamConnection): void {
    if (this.phase === Phase.Done) {
      conn.abandon(this);
      return;
    }
    this.conn = conn;
    if (!this.hasBody) {
      conn.write(this.head);
      conn.endRequest();
      this.ctx.watch(this, this.gen.config.timeouts.responseMs);
      return;
    }
    const socket = conn.socket;
    this.ctx.watch(this, this.gen.config.timeouts.responseMs); // re-armed while the body moves
    socket.cork();
    conn.write(this.head);
    this.bodyStarted = true;
    const queue = this.queue;
    this.queue = null;
    this.queued = 0;
    if (queue !== null) for (const chunk of queue) this.writeBody(chunk, undefined);
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
    // uWS lends the bytes only for this call: copy them
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
      this.writeBody(copy, slabs.lastRelease);
    }
    if (isLast) this.endBody();
    socket.uncork();
    // Node's write() says false for any chunk over 16 KiB even when the kernel took it all;
    // what is still queued in user space is what must pause the client
    if (socket.writableLength > BODY_QUEUE_LIMIT) this.pauseClient();
  }

  /** `written` runs when the chunk's memory is no longer needed (see BodySlabs). */
  private writeBody(chunk: Buffer, written: (() => void) | undefined): void {
    const conn = this.conn!;
    if (!this.chunkedBody) {
      conn.write(chunk, written);
      return;
    }
    conn.write(chunk.length.toString(16) + '\r\n');
    conn.write(chunk, written);
    conn.write('\r\n');
  }

  private endBody(): void {
    const conn = this.conn!;
    if (this.chunkedBody) conn.write('0\r\n\r\n');
    conn.endRequest();
    if (this.phase === Phase.Sending) this.ctx.watch(this, this.gen.config.timeouts.responseMs);
  }

  private pauseClient(): void {
    if (this.clientPaused || this.aborted) return;
    this.clientPaused = true;
    this.res.pause();
  }
  private resumeClient(): void {
    if (!this.clientPaused || this.aborted) return;
    this.clientPaused = false;
    this.res.resume();
  }

  onUpstreamDrain(): void {
    if (this.phase !== Phase.Done) this.resumeClient();
  }

  cork(fn: () => void): void {
    if (this.aborted || this.phase === Phase.Done) fn();
    else this.res.cork(fn);
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

  // ---- phase 4: respond
  onResponseHead(head: ResponseHead): void {
    if (this.phase !== Phase.Sending) return;
    // from here the deadline is the longest silence of the backend mid-body (nginx's
    // proxy_read_timeout): still watched, pushed forward by every read
    this.deadline = this.ctx.now + this.gen.config.timeouts.responseMs;
    this.phase = Phase.Responding;
    const status = head.status;
    this.status = status;
    const gen = this.gen;
    if (status >= 500) gen.state.countFailure(this.backend, FailureKind.Status5xx);
    const upstreamMs = performance.now() - this.sentAt;
    this.upstreamMs = upstreamMs;
    gen.balancers[this.pool]!.observe(this.backend, upstreamMs);
    gen.state.recordLatency(this.backend, upstreamMs * 1000);
    const res = this.res;
    res.writeStatus(forwardedHead(head));
    // while draining, tell the client not to send another request on this connection; and say
    // so when uWS will close it after this answer
    if (this.ctx.draining || this.clientCloses) res.writeHeader('connection', 'close');
    // sticky pools: name the backend that answered, unless the client's cookie already does
    if (gen.sticky[this.pool] !== null && this.stickyCookie !== gen.stickyIds[this.backend]) {
      res.writeHeader('set-cookie', gen.stickySetCookies[this.backend]!);
    }
    const framing = head.framing;
    const length = head.length;
    if (framing === Framing.None) {
      // endWithoutBody(undefined) would report a garbage length: call it without an argument
      if ((this.method === 'HEAD' || status === 304) && length >= 0) res.endWithoutBody(length);
      else if (this.method === 'HEAD' || status === 204 || status === 304) res.endWithoutBody();
      else res.end();
      this.total = ENDED;
      return; // onResponseEnd follows
    }
    this.total = framing === Framing.Length ? length : -1;
  }

  onResponseBody(chunk: Buffer): void {
    if (this.phase !== Phase.Responding) return;
    this.bytesOut += chunk.length;
    this.deadline = this.ctx.now + this.gen.config.timeouts.responseMs;
    const res = this.res;
    if (this.total >= 0) {
      if (this.bytesOut === this.total && chunk.length === this.total) {
        res.end(chunk); // the whole body in one read: nothing to wait for (uWS keeps what the socket refuses)
        return;
      }
      const offset = res.getWriteOffset();
      const [ok, done] = res.tryEnd(chunk, this.total);
      if (!done && !ok) {
        this.pending = Buffer.from(chunk); // the chunk is a view of the shared read buffer
        this.pendingOffset = offset;
        this.pauseUpstream();
      }
    } else if (!res.write(chunk)) {
      this.pauseUpstream();
    }
  }

  private pauseUpstream(): void {
    if (this.upstreamPaused) return;
    this.upstreamPaused = true;
    this.ctx.unwatch(this); // a slow client is not the backend's silence
    this.conn?.pauseReading(this);
    this.res.onWritable((offset) => {
      try {
        return this.onClientWritable(offset);
      } catch (e) {
        this.internalError(e);
        return true;
      }
    });
  }

  private onClientWritable(offset: number): boolean {
    if (this.phase === Phase.Done && this.pending === null) return true;
    const pending = this.pending;
    if (pending !== null) {
      const [ok, done] = this.res.tryEnd(pending.subarray(offset - this.pendingOffset), this.total);
      if (!ok && !done) return false;
      this.pending = null;
      if (done) {
        this.finishResponse();
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
    // The connection is done with this exchange: back in the pool, or to be closed when the
    // backend answered before the request body ended. Drop it either way.
    const conn = this.detach();
    if (conn !== null && this.hasBody && !this.bodyDone) conn.abandon(this);
    if (this.total === -1) {
      this.res.end();
    } else if (this.pending !== null) {
      return; // the last bytes are still queued for the client: finished from onClientWritable
    }
    this.finishResponse();
  }

  private finishResponse(): void {
    if (this.phase === Phase.Done) return;
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
    if (
      this.phase === Phase.Sending &&
      conn !== null &&
      conn.reused &&
      conn.received === 0 &&
      !this.hasBody &&
      this.idempotent &&
      !this.staleRetried
    ) {
      this.staleRetried = true;
      this.ctx.unwatch(this);
      this.gen.upstreams[this.backend]!.acquire(this, this.method === 'HEAD', true);
      return;
    }
    if (this.phase === Phase.Sending && this.mayRetry(err)) {
      this.retryElsewhere(err);
      return;
    }
    this.fail(err);
  }

  /**
   * The error says whether the request may be repeated; `retries` and the pool's retry budget
   * say whether it will be. A connect failure sent nothing, so it costs no budget.
   */
  private mayRetry(err: ProxyError): boolean {
    if (this.aborted || this.attempts > this.gen.config.pools[this.pool]!.retries) return false;
    if (err.retry === 'safe') return !this.bodyStarted;
    if (err.retry !== 'idempotent' || !this.idempotent || this.hasBody) return false;
    if (this.gen.budgets[this.pool]!.withdraw()) return true;
    this.gen.state.countPoolEvent(this.pool, PoolEvent.RetryBudgetExhausted);
    return false;
  }

  private retryElsewhere(err: ProxyError): void {
    const gen = this.gen;
    const failed = this.backend;
    this.countFailure(err);
    gen.state.releaseInflight(failed);
    this.backend = NONE;
    this.lastFailed = failed;
    this.lastError = err;
    this.ctx.unwatch(this);
    this.ctx.slotFreed();
    this.pickAndSend(); // sends elsewhere, or answers lastError when no other backend is free
  }

  /** Logged only once another backend was found: a failure with nowhere to go is one line. */
  private logRetry(next: number): void {
    const gen = this.gen;
    const failed = this.lastFailed;
    gen.state.countRetried(failed);
    this.ctx.log.warn(
      {
        reqId: this.requestId,
        code: this.lastError!.code,
        backend: gen.backendUrls[failed],
        next: gen.backendUrls[next],
        attempt: this.attempts + 1,
        method: this.method,
        path: this.path,
      },
      'retrying on another backend',
    );
  }

  /** A failed attempt counts against its backend (passive health checks judge the counts). */
  private countFailure(err: ProxyError): void {
    if (this.backend === NONE || err.source !== 'upstream') return;
    const kind = ERRORS[err.code].failure;
    if (kind !== -1) this.gen.state.countFailure(this.backend, kind);
  }

  // ---- phase 5: fail
  /**
   * Answer the error, or cut the connection when the response has begun. `closeConnection` is
   * for requests whose framing cannot be trusted. Otherwise a request body still arriving is
   * read and discarded first, and the answer sent when it ends (nginx's lingering close):
   * answering and closing at once resets the connection under a client that is still sending,
   * and most clients then never read the status.
   */
  private fail(err: ProxyError): void {
    if (this.phase === Phase.Done) return;
    const ctx = this.ctx;
    if (err !== this.lastError) this.countFailure(err); // a retry already counted lastError
    ctx.unwatch(this);
    this.detach()?.abandon(this);
    const status = statusFor(err.code);
    this.code = err.code;
    const started = this.phase === Phase.Responding;
    // Done before touching the client: res.close() calls onAborted synchronously, which must
    // find the request already ended
    this.phase = Phase.Done;
    if (!this.aborted) {
      if (started) {
        this.res.close(); // a truncated response must not look complete
      } else {
        this.status = status;
        const text = statusLine(err.code);
        const closeConnection = ERRORS[err.code].connection !== 'keep';
        if (!closeConnection && this.hasBody && !this.bodyDone) {
          this.lingering = text;
          this.queue = null;
          this.resumeClient();
          ctx.watch(this, LINGER_MS);
        } else {
          this.respondError(text, closeConnection);
        }
      }
    }
    this.logError(err.code, status, err.message, started);
    this.finish();
  }

  private respondError(text: string, closeConnection: boolean): void {
    const res = this.res;
    if (closeConnection) {
      answerAndClose(res, text, this.requestId, this.clientCloses, this.code !== null && ERRORS[this.code].connection === 'refuse');
      return;
    }
    res.cork(() => {
      res.writeStatus(text);
      res.writeHeader('content-type', 'text/plain; charset=utf-8');
      res.writeHeader('x-request-id', this.requestId);
      if (this.ctx.draining || this.clientCloses) res.writeHeader('connection', 'close');
      res.end(text + '\n');
    });
  }

  /** The rejected body has ended (or taken too long): send the held answer. */
  private endLinger(closeConnection: boolean): void {
    const text = this.lingering!;
    this.lingering = null;
    this.ctx.unwatch(this);
    if (!this.aborted) this.respondError(text, closeConnection);
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
    if (this.ctx.cutting) {
      // the drain's time is over and the worker closed the connection: not the client's doing
      this.code = 'CLB_ERR_DRAIN_TIMEOUT';
      const started = this.status !== 0;
      if (!started) this.status = statusFor(this.code);
      this.logError(this.code, this.status, 'timeouts.drain is over: request cut', started);
    } else {
      this.code = 'CLB_ERR_CLIENT_ABORTED';
      if (this.status === 0) this.status = 499;
      if (this.ctx.log.isLevelEnabled('info')) {
        this.ctx.log.info({ reqId: this.requestId, code: this.code, backend: this.backendUrl() }, 'client closed the connection');
      }
    }
    this.finish();
  }

  /** Take the connection away from this exchange (it is no longer to be touched by it). */
  private detach(): UpstreamConnection | null {
    const conn = this.conn;
    this.conn = null;
    return conn;
  }

  private backendUrl(): string | null {
    const b = this.backend !== NONE ? this.backend : this.lastFailed;
    return b === NONE ? null : this.gen.backendUrls[b]!;
  }

  private logError(code: ErrorCode, status: number, message: string, midResponse: boolean): void {
    this.ctx.log.warn(
      { reqId: this.requestId, code, status, backend: this.backendUrl(), method: this.method, path: this.path, midResponse },
      message,
    );
  }

  // ---- phase 6: finish, always once
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.phase = Phase.Done;
    const ctx = this.ctx;
    if (this.lingering === null) ctx.unwatch(this);
    const state = this.gen.state;
    if (this.backend !== NONE) {
      state.releaseInflight(this.backend);
      ctx.slotFreed();
    }
    // counted once per client request, on the backend that answered (or failed last)
    const counted = this.backend !== NONE ? this.backend : this.lastFailed;
    if (counted !== NONE) state.countStatus(counted, this.status);
    else if (this.pool >= 0) state.countPoolStatus(this.pool, this.status);
    else state.countNoPoolStatus(this.status);
    this.queue = null;
    this.pending = null;
    if (ctx.accessLog) {
      ctx.accessLogger.info(
        {
          reqId: this.requestId,
          method: this.method,
          path: this.path,
          status: this.status,
          code: this.code,
          backend: this.backendUrl(),
          bytesIn: this.bytesIn,
          bytesOut: this.bytesOut,
          upstreamMs: this.upstreamMs < 0 ? null : Math.round(this.upstreamMs * 1000) / 1000,
          // null for a request that began before a reload turned the access log on: its start
          // was not taken (no clock read per request while the access log is off)
          durationMs: this.started === 0 ? null : Math.round((performance.now() - this.started) * 1000) / 1000,
        },
        'access',
      );
    }
    ctx.requestFinished(this.gen);
  }
}
