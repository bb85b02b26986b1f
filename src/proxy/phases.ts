// Owns the policy of a proxied request (Pingora's ProxyHttp): what the engine (exchange.ts) asks
// at each step, and corelb's defaults. A feature is a phase implementation whose default costs
// nothing when it is off (a cache lookup in selectBackend / responseFilter, a rate limit in
// requestFilter, header rules in upstreamRequest / responseFilter).

import { performance } from 'node:perf_hooks';
import { NONE, type PickContext } from '../balancer/types.js';
import { ERRORS, ProxyError, statusFor } from '../errors.js';
import { FailureKind, PoolEvent } from '../shared/layout.js';
import { buildRequestHead, FramingProblem, newClientHead } from '../upstream/request-head.js';
import type { ResponseHead } from '../upstream/response-parser.js';
import { cookieValue, requestHash } from './affinity.js';
import type { Downstream } from './downstream.js';
import type { ProxyExchange } from './exchange.js';
import { forwardedHead } from './response-head.js';
import { normaliseHost } from './router.js';

export interface ProxyPhases {
  /**
   * In the front's handler, while the request head is readable: read it (the upstream head,
   * framing, request id, pool, affinity) and judge it. An error is answered at once; null goes on.
   */
  requestFilter(x: ProxyExchange, down: Downstream): ProxyError | null;
  /** A backend that may take the request now, holding an in-flight slot on it; NONE when none may. */
  selectBackend(x: ProxyExchange): number;
  /** The request head for the backend just picked, ending with its blank line. */
  upstreamRequest(x: ProxyExchange): string;
  /** May a request whose attempt failed with `err` go to another backend? */
  shouldRetry(x: ProxyExchange, err: ProxyError): boolean;
  /** An attempt failed (a retry may follow): what passive checks count. */
  attemptFailed(x: ProxyExchange, err: ProxyError): void;
  /** The backend answered: write the client's status line and fields (the engine sends the body). */
  responseFilter(x: ProxyExchange, head: ResponseHead, down: Downstream): void;
  /**
   * The request failed before any answer began: may something else answer instead (a stale
   * cache entry, RFC 5861's stale-if-error)? True when it answered the client.
   */
  errorFallback(x: ProxyExchange, err: ProxyError): boolean;
  /** The request failed for good; `midResponse`: the client's response was cut, not answered. */
  failToProxy(x: ProxyExchange, err: ProxyError, midResponse: boolean): void;
  /** The request is over: always called once. */
  logging(x: ProxyExchange): void;
}

/** Test hook: a request for exactly this path throws inside request handling (see README). */
const TEST_THROW_PATH = process.env.CORELB_TEST_THROW_PATH ?? null;

const FRAMING_REFUSALS: Record<Exclude<FramingProblem, FramingProblem.None>, string> = {
  [FramingProblem.BadLength]: 'invalid Content-Length (not digits, or two different values)',
  [FramingProblem.RepeatedCoding]: 'Transfer-Encoding on more than one line',
  [FramingProblem.LengthAndCoding]: 'both Content-Length and Transfer-Encoding',
  [FramingProblem.UnknownCoding]: 'a transfer coding other than chunked',
};

const pickContext: PickContext = { avoid: NONE, maxInflight: 0, hash: -1 };

export class DefaultPhases implements ProxyPhases {
  requestFilter(x: ProxyExchange, down: Downstream): ProxyError | null {
    const gen = x.gen;
    x.remote = gen.readsClientAddress ? down.clientAddress() : '';
    const clientHead = newClientHead(); // young: the strings stored into it need no remembered-set entry
    buildRequestHead(down, x.method, x.path, x.remote, x.ctx.newRequestId, clientHead);
    x.head = clientHead.head;
    x.requestId = clientHead.requestId;
    x.chunkedBody = clientHead.chunked;
    x.clientCloses = clientHead.closes;
    const length = clientHead.contentLength;
    x.hasBody = length > 0 || clientHead.chunked;
    const problem = clientHead.framing;
    if (problem !== FramingProblem.None) {
      // the front server framed this request its own way: answer, close, and parse nothing after
      return new ProxyError(problem === FramingProblem.UnknownCoding ? 'CLB_ERR_UNKNOWN_CODING' : 'CLB_ERR_BAD_REQUEST', FRAMING_REFUSALS[problem]);
    }
    if (length > gen.config.limits.maxBodyBytes) return new ProxyError('CLB_ERR_BODY_TOO_LARGE', `body of ${length} bytes over limits.max_body`);
    const pool = this.routeOf(x, clientHead.host);
    if (pool < 0) return new ProxyError('CLB_ERR_NO_ROUTE', 'no route matches');
    if (TEST_THROW_PATH !== null && x.path === TEST_THROW_PATH) throw new Error('planted test error (CORELB_TEST_THROW_PATH)');
    x.pool = pool;
    if (gen.affinity[pool]) {
      const key = gen.hashKeys[pool]!;
      if (key !== null) x.hash = requestHash(down, key, x.path, x.remote);
      const sticky = gen.sticky[pool]!;
      if (sticky !== null) x.stickyCookie = cookieValue(down.header('cookie'), sticky.cookie);
    }
    gen.budgets[pool]!.deposit();
    return null;
  }

  /** The pool the request's route names, or -1 (`host` as the client sent it). */
  protected routeOf(x: ProxyExchange, host: string): number {
    const router = x.gen.router;
    return router.match(router.needsHost ? normaliseHost(host) : '', x.path);
  }

  selectBackend(x: ProxyExchange): number {
    const gen = x.gen;
    const maxInflight = gen.config.limits.maxConnectionsPerBackend;
    let backend = x.stickyCookie === null ? NONE : this.stickyPick(x, maxInflight);
    if (backend === NONE) {
      pickContext.avoid = x.lastFailed;
      pickContext.maxInflight = maxInflight;
      pickContext.hash = x.hash;
      backend = gen.balancers[x.pool]!.pick(pickContext);
    }
    if (backend === x.lastFailed && backend !== NONE) {
      gen.state.releaseInflight(backend); // never the backend that just failed
      return NONE;
    }
    if (backend !== NONE && x.lastError !== null) this.logRetry(x, backend);
    return backend;
  }

  /** The backend the request's sticky cookie names, when it may take the request now; else NONE. */
  private stickyPick(x: ProxyExchange, maxInflight: number): number {
    const gen = x.gen;
    const b = gen.stickyBackend(x.pool, x.stickyCookie!);
    if (b < 0 || b === x.lastFailed || !gen.state.available(b)) return NONE;
    return gen.state.tryAcquireInflight(b, maxInflight) ? b : NONE;
  }

  /** Logged only once another backend was found: a failure with nowhere to go is one line. */
  private logRetry(x: ProxyExchange, next: number): void {
    const gen = x.gen;
    gen.state.countRetried(x.lastFailed);
    x.ctx.log.warn(
      {
        reqId: x.requestId,
        code: x.lastError!.code,
        backend: gen.backendUrls[x.lastFailed],
        next: gen.backendUrls[next],
        attempt: x.attempts + 1,
        method: x.method,
        path: x.path,
      },
      'retrying on another backend',
    );
  }

  upstreamRequest(x: ProxyExchange): string {
    return x.head;
  }

  /**
   * The error says whether the request may be repeated; `retries` and the pool's retry budget
   * say whether it will be. A connect failure sent nothing, so it costs no budget.
   */
  shouldRetry(x: ProxyExchange, err: ProxyError): boolean {
    const gen = x.gen;
    if (x.attempts > gen.config.pools[x.pool]!.retries) return false;
    if (err.retry === 'safe') return !x.bodyStarted;
    if (err.retry !== 'idempotent' || !x.idempotent || x.hasBody) return false;
    if (gen.budgets[x.pool]!.withdraw()) return true;
    gen.state.countPoolEvent(x.pool, PoolEvent.RetryBudgetExhausted);
    return false;
  }

  attemptFailed(x: ProxyExchange, err: ProxyError): void {
    if (x.backend === NONE || err.source !== 'upstream') return;
    const kind = ERRORS[err.code].failure;
    if (kind !== -1) x.gen.state.countFailure(x.backend, kind);
  }

  responseFilter(x: ProxyExchange, head: ResponseHead, down: Downstream): void {
    this.observeResponse(x, head);
    down.writeHead(forwardedHead(head));
    this.closeAndStick(x, down);
  }

  /** What a backend's answer tells the balancer and the passive checks. */
  protected observeResponse(x: ProxyExchange, head: ResponseHead): void {
    const gen = x.gen;
    const backend = x.backend;
    if (head.status >= 500) gen.state.countFailure(backend, FailureKind.Status5xx);
    gen.balancers[x.pool]!.observe(backend, x.upstreamMs);
    gen.state.recordLatency(backend, x.upstreamMs * 1000);
  }

  /** The fields every answer through a backend carries after its own: Connection, the sticky cookie. */
  protected closeAndStick(x: ProxyExchange, down: Downstream): void {
    const gen = x.gen;
    const backend = x.backend;
    // while draining, tell the client not to send another request on this connection; and say
    // so when the front will close it after this answer
    if (x.ctx.draining || x.clientCloses) down.writeHeader('connection', 'close');
    // sticky pools: name the backend that answered, unless the client's cookie already does
    if (gen.sticky[x.pool] !== null && x.stickyCookie !== gen.stickyIds[backend]) {
      down.writeHeader('set-cookie', gen.stickySetCookies[backend]!);
    }
  }

  errorFallback(_x: ProxyExchange, _err: ProxyError): boolean {
    return false;
  }

  failToProxy(x: ProxyExchange, err: ProxyError, midResponse: boolean): void {
    const log = x.ctx.log;
    const b = x.lastBackend;
    const backend = b === NONE ? null : x.gen.backendUrls[b]!;
    if (err.code === 'CLB_ERR_CLIENT_ABORTED') {
      if (log.isLevelEnabled('info')) log.info({ reqId: x.requestId, code: err.code, backend }, err.message);
      return;
    }
    log.warn({ reqId: x.requestId, code: err.code, status: statusFor(err.code), backend, method: x.method, path: x.path, midResponse }, err.message);
  }

  logging(x: ProxyExchange): void {
    const ctx = x.ctx;
    const state = x.gen.state;
    // counted once per client request, on the backend that answered (or failed last)
    const counted = x.lastBackend;
    if (counted !== NONE) state.countStatus(counted, x.status);
    else if (x.pool >= 0) state.countPoolStatus(x.pool, x.status);
    else state.countNoPoolStatus(x.status);
    if (!ctx.accessLog) return;
    ctx.accessLogger.info(this.accessLine(x), 'access');
  }

  /** The fields of the request's access log line. */
  protected accessLine(x: ProxyExchange): Record<string, unknown> {
    const counted = x.lastBackend;
    return {
      reqId: x.requestId,
      method: x.method,
      path: x.path,
      status: x.status,
      code: x.code,
      backend: counted === NONE ? null : x.gen.backendUrls[counted],
      bytesIn: x.bytesIn,
      bytesOut: x.bytesOut,
      upstreamMs: x.upstreamMs < 0 ? null : Math.round(x.upstreamMs * 1000) / 1000,
      // null for a request that began before a reload turned the access log on: its start
      // was not taken (no clock read per request while the access log is off)
      durationMs: x.started === 0 ? null : Math.round((performance.now() - x.started) * 1000) / 1000,
    };
  }
}
