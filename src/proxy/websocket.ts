// Owns the policy of a WebSocket handshake: the same route, affinity (hash key, sticky cookie) and
// balancing pick as an ordinary request, another backend of the pool when the picked one could
// not be connected (bounded by the pool's `retries`), the upstream handshake head (the request's
// own head as buildRequestHead makes it, with Upgrade / Connection put back and the client's
// Sec-WebSocket-Key and -Extensions left out: the backend side gets its own key and no extension
// offer), and the WebSocket's access lines (the handshake's, and one at its end). The picked
// backend's in-flight slot is held for the life of the WebSocket.

import { performance } from 'node:perf_hooks';
import { NONE, type PickContext } from '../balancer/types.js';
import { ERRORS, ProxyError, statusFor, type ErrorCode } from '../errors.js';
import { listElements } from '../http-tokens.js';
import { buildRequestHead, FramingProblem, newClientHead } from '../upstream/request-head.js';
import { cookieValue, requestHash } from './affinity.js';
import type { Generation, WorkerContext } from './context.js';
import type { Downstream } from './downstream.js';
import { normaliseHost } from './router.js';

export interface WebSocketRoute {
  readonly gen: Generation;
  readonly pool: number;
  /** Holds an in-flight slot: release it with gen.state.releaseInflight when the WebSocket ends. */
  backend: number;
  /** Connection attempts made, the current one included. */
  attempts: number;
  /** The pool's hash of the request (-1: none), for a pick on another backend. */
  readonly hash: number;
  /** The upstream handshake head without its key, ending with its blank line. */
  readonly head: string;
  readonly requestId: string;
  /** As the access log shows it: without the query string. */
  readonly path: string;
  /** performance.now() at the handshake's arrival; 0 while the access log is off (no clock read). */
  readonly started: number;
}

const pickContext: PickContext = { avoid: NONE, maxInflight: 0, hash: -1 };

/** Read while the front's upgrade handler runs (the request head is readable only then). */
export function routeWebSocket(ctx: WorkerContext, down: Downstream): WebSocketRoute | ProxyError {
  const gen = ctx.current;
  const started = ctx.accessLog ? performance.now() : 0;
  const path = down.url();
  const remote = gen.readsClientAddress ? down.clientAddress() : '';
  const clientHead = newClientHead();
  buildRequestHead(down, 'GET', path, remote, ctx.newRequestId, clientHead);
  const requestId = clientHead.requestId;
  let refusal: ProxyError | null = null;
  let pool = -1;
  const version = down.header('sec-websocket-version');
  if (clientHead.framing !== FramingProblem.None || clientHead.contentLength > 0 || clientHead.chunked) {
    refusal = new ProxyError('CLB_ERR_BAD_REQUEST', 'a WebSocket handshake with a body');
  } else if (version !== '13') {
    // uWS upgrades any version; corelb's framing, both sides, is RFC 6455's, version 13
    refusal = new ProxyError('CLB_ERR_WEBSOCKET_VERSION', version === '' ? 'a WebSocket handshake without Sec-WebSocket-Version' : `a WebSocket handshake of version ${version} (corelb speaks 13)`);
  } else if (listElements(down.header('connection'))?.includes('upgrade') !== true) {
    // RFC 6455 §4.2.1: the handshake's Connection names Upgrade. One that says `close` instead
    // also makes uWS close the WebSocket right after its upgrade (the cork bug in websocket.ts)
    refusal = new ProxyError('CLB_ERR_BAD_REQUEST', 'a WebSocket handshake whose Connection field does not name upgrade');
  } else {
    pool = gen.router.match(gen.router.needsHost ? normaliseHost(clientHead.host) : '', path);
    if (pool < 0) refusal = new ProxyError('CLB_ERR_NO_ROUTE', 'no route matches');
  }
  let hash = -1;
  let backend = NONE;
  const maxInflight = gen.config.limits.maxConnectionsPerBackend;
  if (refusal === null && gen.affinity[pool]) {
    const key = gen.hashKeys[pool]!;
    if (key !== null) hash = requestHash(down, key, path, remote);
    const sticky = gen.sticky[pool]!;
    if (sticky !== null) {
      const cookie = cookieValue(down.header('cookie'), sticky.cookie);
      if (cookie !== null) {
        const b = gen.stickyBackend(pool, cookie);
        if (b >= 0 && gen.state.available(b) && gen.state.tryAcquireInflight(b, maxInflight)) backend = b;
      }
    }
  }
  if (refusal === null && backend === NONE) {
    backend = pickOther(gen, pool, NONE, hash);
    if (backend === NONE) refusal = new ProxyError('CLB_ERR_NO_BACKEND', 'no backend available');
  }
  if (refusal !== null) {
    if (ctx.accessLog) logHandshake(ctx, gen, requestId, path, started, statusFor(refusal.code), refusal.code, NONE, -1, 0);
    return refusal;
  }
  let head = '';
  for (const line of clientHead.head.split('\r\n')) {
    if (line.length === 0) break;
    const lower = line.slice(0, 25).toLowerCase();
    if (lower.startsWith('sec-websocket-key:') || lower.startsWith('sec-websocket-extensions:')) continue;
    head += line + '\r\n';
  }
  head += 'upgrade: websocket\r\nconnection: upgrade\r\n\r\n';
  return { gen, pool, backend, attempts: 1, hash, head, requestId, path, started };
}

/** A backend of `pool` that may take a WebSocket now, never `avoid`, holding its in-flight slot; NONE when none may. */
function pickOther(gen: Generation, pool: number, avoid: number, hash: number): number {
  pickContext.avoid = avoid;
  pickContext.maxInflight = gen.config.limits.maxConnectionsPerBackend;
  pickContext.hash = hash;
  const b = gen.balancers[pool]!.pick(pickContext);
  if (b === avoid && b !== NONE) {
    gen.state.releaseInflight(b); // never the backend that just failed
    return NONE;
  }
  return b;
}

/**
 * After the route's backend failed with `code` before answering the handshake: the next backend
 * to try (the failed one's slot released, the new one's held, route.backend moved to it), or NONE
 * (the failed one's slot still held). Only a failure that sent nothing ('safe': connect refused,
 * connect timeout, TLS) goes elsewhere, at most the pool's `retries` times, as for a request.
 */
export function retryWebSocket(ctx: WorkerContext, route: WebSocketRoute, code: ErrorCode): number {
  const gen = route.gen;
  if (ERRORS[code].retry !== 'safe' || route.attempts > gen.config.pools[route.pool]!.retries) return NONE;
  const failed = route.backend;
  const next = pickOther(gen, route.pool, failed, route.hash);
  if (next === NONE) return NONE;
  gen.state.countRetried(failed);
  gen.state.releaseInflight(failed);
  ctx.log.warn({ reqId: route.requestId, code, backend: gen.backendUrls[failed], next: gen.backendUrls[next], attempt: route.attempts + 1, method: 'GET', path: route.path, websocket: true }, 'retrying on another backend');
  route.backend = next;
  route.attempts++;
  return next;
}

/** ms from `since` (a performance.now()), to the microsecond; null when it was not taken. */
function msSince(since: number): number | null {
  return since === 0 ? null : Math.round((performance.now() - since) * 1000) / 1000;
}

/**
 * The handshake's access line (call only when ctx.accessLog): the status the client got (101, or
 * the backend's refusal, or corelb's error answer) and its code, as a request's line.
 */
export function logHandshake(ctx: WorkerContext, gen: Generation, requestId: string, path: string, started: number, status: number, code: ErrorCode | null, backend: number, upstreamMs: number, bytesOut: number): void {
  ctx.accessLogger.info(
    {
      reqId: requestId,
      method: 'GET',
      path,
      status,
      code,
      backend: backend === NONE ? null : gen.backendUrls[backend],
      bytesIn: 0,
      bytesOut,
      upstreamMs: upstreamMs < 0 ? null : Math.round(upstreamMs * 1000) / 1000,
      durationMs: msSince(started),
      websocket: 'handshake',
    },
    'access',
  );
}

/** Who ended a WebSocket, for its last access line. */
export type ClosedBy = 'client' | 'backend' | 'corelb';

/** What a WebSocket's end line says (the relay counts messages and bytes; they cost nothing to keep). */
export interface WebSocketTally {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  /** The close code that ended it (1006: no close frame), and who sent or caused it. */
  closeCode: number;
  closedBy: ClosedBy;
  /** performance.now() at the upgrade; 0 when the access log was off then. */
  openedAt: number;
}

/** The WebSocket's last access line (call only when ctx.accessLog), once both sides are closed. */
export function logWebSocketEnd(ctx: WorkerContext, route: WebSocketRoute, t: WebSocketTally): void {
  ctx.accessLogger.info(
    {
      reqId: route.requestId,
      method: 'GET',
      path: route.path,
      status: 101,
      backend: route.gen.backendUrls[route.backend],
      messagesIn: t.messagesIn,
      bytesIn: t.bytesIn,
      messagesOut: t.messagesOut,
      bytesOut: t.bytesOut,
      closeCode: t.closeCode,
      closedBy: t.closedBy,
      durationMs: msSince(t.openedAt),
      websocket: 'closed',
    },
    'access',
  );
}
