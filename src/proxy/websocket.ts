// Owns the policy of a WebSocket handshake: the same route, affinity (hash key, sticky cookie) and
// balancing pick as an ordinary request, and the upstream handshake head (the request's own head
// as buildRequestHead makes it, with Upgrade / Connection put back and the client's
// Sec-WebSocket-Key and -Extensions left out: the backend side gets its own key and no extension
// offer). The picked backend's in-flight slot is held for the life of the WebSocket.

import { NONE, type PickContext } from '../balancer/types.js';
import { ProxyError } from '../errors.js';
import { buildRequestHead, FramingProblem, type ClientHead } from '../upstream/request-head.js';
import { cookieValue, requestHash } from './affinity.js';
import type { Generation, WorkerContext } from './context.js';
import type { Downstream } from './downstream.js';
import { normaliseHost } from './router.js';

export interface WebSocketRoute {
  readonly gen: Generation;
  readonly pool: number;
  /** Holds an in-flight slot: release it with gen.state.releaseInflight when the WebSocket ends. */
  readonly backend: number;
  /** The upstream handshake head without its key, ending with its blank line. */
  readonly head: string;
  readonly requestId: string;
}

const clientHead: ClientHead = { head: '', host: '', contentLength: -1, chunked: false, framing: FramingProblem.None, closes: false, requestId: '' };
const pickContext: PickContext = { avoid: NONE, maxInflight: 0, hash: -1 };

/** Read while the front's upgrade handler runs (the request head is readable only then). */
export function routeWebSocket(ctx: WorkerContext, down: Downstream): WebSocketRoute | ProxyError {
  const gen = ctx.current;
  const path = down.url();
  const remote = gen.readsClientAddress ? down.clientAddress() : '';
  buildRequestHead(down, 'GET', path, remote, ctx.newRequestId, clientHead);
  const requestId = clientHead.requestId;
  if (clientHead.framing !== FramingProblem.None || clientHead.contentLength > 0 || clientHead.chunked) {
    return new ProxyError('CLB_ERR_BAD_REQUEST', 'a WebSocket handshake with a body');
  }
  const pool = gen.router.match(gen.router.needsHost ? normaliseHost(clientHead.host) : '', path);
  if (pool < 0) return new ProxyError('CLB_ERR_NO_ROUTE', 'no route matches');
  let hash = -1;
  let backend = NONE;
  const maxInflight = gen.config.limits.maxConnectionsPerBackend;
  if (gen.affinity[pool]) {
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
  if (backend === NONE) {
    pickContext.avoid = NONE;
    pickContext.maxInflight = maxInflight;
    pickContext.hash = hash;
    backend = gen.balancers[pool]!.pick(pickContext);
  }
  if (backend === NONE) return new ProxyError('CLB_ERR_NO_BACKEND', 'no backend available');
  let head = '';
  for (const line of clientHead.head.split('\r\n')) {
    if (line.length === 0) break;
    const lower = line.slice(0, 25).toLowerCase();
    if (lower.startsWith('sec-websocket-key:') || lower.startsWith('sec-websocket-extensions:')) continue;
    head += line + '\r\n';
  }
  head += 'upgrade: websocket\r\nconnection: upgrade\r\n\r\n';
  return { gen, pool, backend, head, requestId };
}
