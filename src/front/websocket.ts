// Owns the client side of proxied WebSockets in uWebSockets.js: the `app.ws` behaviour of a
// listener (uWS hands it only GETs with a Sec-WebSocket-Key; plain requests never reach it),
// the handshake held open while the backend answers (routeWebSocket picks it, UpstreamWebSocket
// speaks to it), the client's upgrade completed in a cork with the backend's subprotocol, or the
// backend's other answer relayed as an ordinary response, or another backend tried when this one
// could not be connected; then messages both ways with backpressure, pings both ways (pongs as
// far as uWS allows), closes passed on with their codes, the access lines, and the registry a
// graceful stop ends with 1001. uWS terminates the framing: a message relay, not a byte tunnel. No exception may escape
// into uWS: every callback is wrapped.

import uWS from 'uWebSockets.js';
import { performance } from 'node:perf_hooks';
import { NONE } from '../balancer/types.js';
import { ERRORS, statusLine, type ProxyError } from '../errors.js';
import type { SharedState } from '../shared/layout.js';
import type { Generation, WorkerContext } from '../proxy/context.js';
import { logHandshake, logWebSocketEnd, retryWebSocket, routeWebSocket, type ClosedBy, type WebSocketRoute, type WebSocketTally } from '../proxy/websocket.js';
import { UpstreamWebSocket, type FailureCode, type RefusalAnswer, type UpstreamWebSocketEvents } from '../upstream/websocket.js';
import { isSendableCloseCode } from '../upstream/websocket-frames.js';
import { answerAndClose } from './refusal.js';
import { UwsDownstream, type ListenerFacts } from './uws-downstream.js';

/** Bytes queued towards a slow client above which the backend socket is paused, and below which it resumes. */
const CLIENT_HIGH = 1024 * 1024;
const CLIENT_LOW = 256 * 1024;

interface RelayData {
  relay: WebSocketRelay;
}

/** Every relay of this thread that reached its backend, for a graceful stop. */
const open = new Set<WebSocketRelay>();

/** Close every open WebSocket with 1001; resolves when they are gone, or after `ms`. */
export function closeWebSockets(ms: number): Promise<void> {
  for (const r of [...open]) r.goingAway();
  if (open.size === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const started = Date.now();
    const check = setInterval(() => {
      if (open.size === 0 || Date.now() - started >= ms) {
        clearInterval(check);
        resolve();
      }
    }, 20);
  });
}

export function openWebSockets(): number {
  return open.size;
}

class WebSocketRelay {
  private readonly ctx: WorkerContext;
  private readonly route: WebSocketRoute;
  private res: uWS.HttpResponse | null;
  private readonly facts: ListenerFacts;
  private upstream: UpstreamWebSocket;
  private ws: uWS.WebSocket<RelayData> | null = null;
  private clientGone = false;
  private released = false;
  private backendPaused = false;
  /** Messages from the backend before uWS's open (none in practice: open runs inside upgrade). */
  private early: [Buffer, boolean][] | null = null;
  private readonly maxQueued: number;
  /** Where the metrics are counted: the current generation's buffer (found again after a reload). */
  private countGen: Generation;
  private countAt: number;

  /** Messages and bytes each way, the close and who made it: the end's access line. */
  private readonly tally: WebSocketTally = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, closeCode: 1006, closedBy: 'client', openedAt: 0 };
  private ended = false;
  /** performance.now() when the current handshake attempt began (0: access log off). */
  private sentAt = 0;
  private readonly key: string;
  private readonly extensions: string;
  private readonly context: uWS.us_socket_context_t;
  private readonly events: UpstreamWebSocketEvents;

  constructor(ctx: WorkerContext, route: WebSocketRoute, res: uWS.HttpResponse, facts: ListenerFacts, key: string, extensions: string, context: uWS.us_socket_context_t) {
    this.ctx = ctx;
    this.route = route;
    this.res = res;
    this.facts = facts;
    this.key = key;
    this.extensions = extensions;
    this.context = context;
    const gen = route.gen;
    this.maxQueued = gen.config.limits.websocketMessageBytes + CLIENT_HIGH;
    this.countGen = gen;
    this.countAt = route.backend;
    res.onAborted(() => this.guard(() => this.clientAbortedBeforeOpen()));
    this.events = {
      onOpen: (protocol) => this.guard(() => this.backendOpened(protocol)),
      onRefused: (answer) => this.guard(() => this.backendRefused(answer)),
      onFailure: (code, why, opened) => this.guard(() => this.backendFailed(code, why, opened)),
      onDrain: () => undefined, // uWS cannot pause a WebSocket's reads: see message()
      batch: (fn) => {
        const ws = this.ws;
        if (ws === null || this.clientGone) fn();
        else ws.cork(fn);
        this.publishCounts();
      },
      onFlushed: () => {
        try {
          this.publishCounts();
        } catch (e) {
          this.internalError(e);
        }
      },
      onMessage: (data, binary) => {
        // no closure per message (guard's): this is the hot path
        try {
          this.fromBackend(data, binary);
        } catch (e) {
          this.internalError(e);
        }
      },
      onPing: (data) => this.guard(() => this.backendPinged(data)),
      // the answers to the client's pings relayed by ping(): uWS answered them already, and cannot
      // send an unsolicited pong, so every pong of the backend stops here
      onPong: () => undefined,
      onClose: (code, reason) => this.guard(() => this.backendClosed(code, reason)),
      onProtocolError: (code, why) => this.guard(() => this.backendBroke(code, why)),
    };
    this.upstream = this.connect();
  }

  /** A handshake to the route's current backend. */
  private connect(): UpstreamWebSocket {
    const gen = this.route.gen;
    const config = gen.config;
    gen.state.countRequest(this.route.backend);
    this.countAt = this.route.backend;
    if (this.ctx.accessLog) this.sentAt = performance.now();
    return new UpstreamWebSocket(gen.upstreams[this.route.backend]!, this.route.head, config.limits.websocketMessageBytes, config.timeouts.connectMs, config.timeouts.responseMs, this.events);
  }

  /** ms of the current handshake attempt so far (-1: the access log was off when it began). */
  private upstreamMs(): number {
    return this.sentAt === 0 ? -1 : performance.now() - this.sentAt;
  }

  /** The handshake's access line, when the access log is on. */
  private logHandshake(status: number, code: ProxyError['code'] | null, bytesOut: number): void {
    const r = this.route;
    if (this.ctx.accessLog) logHandshake(this.ctx, r.gen, r.requestId, r.path, r.started, status, code, r.backend, this.upstreamMs(), bytesOut);
  }

  /** The first close seen (from either side, or corelb's own) is the one the end's line names. */
  private closing(code: number, by: ClosedBy): void {
    if (this.ended) return;
    this.ended = true;
    this.tally.closeCode = code;
    this.tally.closedBy = by;
  }

  private guard(fn: () => unknown): void {
    try {
      fn();
    } catch (e) {
      this.internalError(e);
    }
  }
  private internalError(e: unknown): void {
    this.ctx.log.error({ err: e, reqId: this.route.requestId }, 'internal error in a WebSocket relay');
  }

  private backendOpened(protocol: string): void {
    const res = this.res;
    if (res === null) {
      this.upstream.close(1001, 'client went away');
      this.release();
      return;
    }
    this.res = null;
    open.add(this);
    this.counted().websocketOpened(this.countAt);
    this.early = [];
    if (this.ctx.accessLog) {
      this.logHandshake(101, null, 0);
      this.tally.openedAt = performance.now();
    }
    this.upgrading = true;
    try {
      res.cork(() => {
        const hsts = this.facts.hsts;
        if (hsts !== null) res.writeHeader('strict-transport-security', hsts);
        res.upgrade<RelayData>({ relay: this }, this.key, protocol, this.extensions, this.context);
      });
    } finally {
      this.upgrading = false;
    }
  }

  /**
   * True while res.cork runs the upgrade. uWebSockets.js's cork, after an upgrade made outside its
   * own callbacks, can read the new WebSocket's memory as the HTTP response's state and close it
   * at once, with 1006 (uNetworking/uWebSockets#1928, fixed upstream by #1929, not in the build
   * corelb depends on). A close seen while this is true is that, and is logged as such.
   */
  private upgrading = false;

  /** uWS's open: the client's side of the WebSocket is up. */
  attach(ws: uWS.WebSocket<RelayData>): void {
    this.ws = ws;
    const early = this.early;
    this.early = null;
    if (early !== null) for (const [data, binary] of early) this.fromBackend(data, binary);
  }

  private backendRefused(answer: RefusalAnswer): void {
    const res = this.res;
    this.release();
    if (res === null) return;
    this.logHandshake(Number(answer.status.slice(0, 3)), null, answer.body.length);
    this.res = null;
    res.cork(() => {
      res.writeStatus(answer.status);
      const hsts = this.facts.hsts;
      if (hsts !== null) res.writeHeader('strict-transport-security', hsts);
      for (const [name, value] of answer.fields) res.writeHeader(name, value);
      res.end(answer.body);
    });
  }

  private backendFailed(code: FailureCode, why: string, opened: boolean): void {
    const route = this.route;
    const gen = route.gen;
    if (!opened) {
      const failure = ERRORS[code].failure;
      if (failure !== -1) gen.state.countFailure(route.backend, failure);
      const failed = route.backend;
      if (this.res !== null && retryWebSocket(this.ctx, route, code) !== NONE) {
        this.upstream = this.connect();
        return;
      }
      this.release();
      this.ctx.log.warn({ reqId: route.requestId, code, backend: gen.backendUrls[failed], websocket: true }, why);
      const res = this.res;
      this.res = null;
      if (res === null) return;
      this.logHandshake(ERRORS[code].status, code, 0);
      answerAndClose(res, statusLine(code), route.requestId, false, false, this.facts.hsts);
      return;
    }
    this.release();
    this.ctx.log.warn({ reqId: route.requestId, backend: gen.backendUrls[route.backend], websocket: true }, 'WebSocket backend failed: ' + why);
    this.closing(1011, 'backend');
    this.endClient(1011, 'backend failed');
  }

  private backendBroke(code: number, why: string): void {
    this.ctx.log.warn({ reqId: this.route.requestId, backend: this.route.gen.backendUrls[this.route.backend], websocket: true }, 'WebSocket backend broke the protocol: ' + why);
    this.upstream.close(code, why);
    this.closing(1011, 'backend');
    this.endClient(1011, 'backend failed');
  }

  private backendClosed(code: number, reason: Buffer): void {
    this.upstream.close(code, reason); // the close handshake's answer (1005: a close frame without a code)
    this.closing(code, 'backend');
    this.endClient(code, reason);
  }

  /** Pings of the backend relayed to the client and not yet answered by it. */
  private pingsOwed = 0;

  private backendPinged(data: Buffer): void {
    const ws = this.ws;
    if (ws === null || this.clientGone) return;
    this.pingsOwed++;
    ws.ping(data);
  }

  private fromBackend(data: Uint8Array, binary: boolean): void {
    const ws = this.ws;
    if (ws === null) {
      this.early?.push([Buffer.from(data), binary]); // data is a view of the socket's chunk
      return;
    }
    if (this.clientGone) return;
    // 1: sent without queueing; otherwise look at the queue (not once per message)
    const sent = ws.send(data, binary);
    this.tally.messagesOut++;
    this.tally.bytesOut += data.length;
    if (sent !== 1 && !this.backendPaused && ws.getBufferedAmount() > CLIENT_HIGH) {
      this.backendPaused = true;
      this.upstream.pause();
    }
  }

  // ---- uWS's events on the client side
  message(msg: ArrayBuffer, binary: boolean): void {
    this.upstream.send(new Uint8Array(msg), binary);
    this.tally.messagesIn++;
    this.tally.bytesIn += msg.byteLength;
    // uWS cannot pause a WebSocket's reads: a client that outpaces its backend is cut instead of
    // queueing without bound
    if (this.upstream.buffered > this.maxQueued) {
      this.ctx.log.warn({ reqId: this.route.requestId, backend: this.route.gen.backendUrls[this.route.backend], websocket: true }, 'WebSocket client outpaces its backend: closed');
      this.upstream.close(1001, 'proxy closing');
      this.closing(1013, 'corelb');
      this.endClient(1013, 'backend too slow');
    }
  }
  drain(ws: uWS.WebSocket<RelayData>): void {
    if (this.backendPaused && ws.getBufferedAmount() < CLIENT_LOW) {
      this.backendPaused = false;
      this.upstream.resume();
    }
  }
  /** uWS answered the client's ping itself; the backend sees it too (liveness it may watch). */
  ping(msg: ArrayBuffer): void {
    this.upstream.ping(new Uint8Array(msg));
  }
  /**
   * The client's pong goes to the backend only while a ping of the backend's is unanswered: the
   * pongs to uWS's own keep-alive pings (timeouts.websocket_idle) are not the backend's business.
   */
  pong(msg: ArrayBuffer): void {
    if (this.pingsOwed === 0) return;
    this.pingsOwed--;
    this.upstream.pong(new Uint8Array(msg));
  }
  /** The tally's messages and bytes already added to the shared metrics. */
  private readonly published = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };

  /**
   * The messages relayed since the last call, added to the shared metrics: once per backend read
   * (towards the client) and once per write to the backend (towards it), not once per message.
   */
  private publishCounts(): void {
    const t = this.tally;
    const p = this.published;
    if (t.messagesOut === p.messagesOut && t.messagesIn === p.messagesIn) return;
    const state = this.counted();
    if (t.messagesOut !== p.messagesOut) {
      state.countWebSocketMessages(this.countAt, true, t.messagesOut - p.messagesOut, t.bytesOut - p.bytesOut);
      p.messagesOut = t.messagesOut;
      p.bytesOut = t.bytesOut;
    }
    if (t.messagesIn !== p.messagesIn) {
      state.countWebSocketMessages(this.countAt, false, t.messagesIn - p.messagesIn, t.bytesIn - p.bytesIn);
      p.messagesIn = t.messagesIn;
      p.bytesIn = t.bytesIn;
    }
  }

  /** uWS's close: the client closed, timed out, or was closed by this relay. */
  closed(code: number, reason: ArrayBuffer): void {
    if (this.upgrading) {
      this.ctx.log.warn(
        { reqId: this.route.requestId, backend: this.route.gen.backendUrls[this.route.backend], websocket: true },
        'WebSocket closed by uWebSockets.js in the same call as its upgrade (1006; a uWebSockets bug with upgrades completed after the handshake request, uNetworking/uWebSockets#1928): the client has to reconnect',
      );
    }
    this.publishCounts();
    this.ws = null;
    this.closing(code, 'client');
    if (!this.clientGone) {
      this.clientGone = true;
      // 1006: the client vanished (or timed out) without a close frame, or uWS found its close
      // frame invalid (uWS also reports codes 1012-3999 so); no other code a frame may not carry
      // reaches the backend either
      if (code === 1005 || isSendableCloseCode(code)) this.upstream.close(code, new Uint8Array(reason.slice(0)));
      else this.upstream.close(1001, 'client went away');
    }
    if (open.delete(this)) this.counted().websocketClosed(this.countAt);
    this.release();
    if (this.ctx.accessLog) logWebSocketEnd(this.ctx, this.route, this.tally);
  }

  /**
   * The buffer to count in: the current generation's (an old one is folded away some time after
   * a reload), at this WebSocket's pool and backend URL there; its own when the new config has
   * no such backend.
   */
  private counted(): SharedState {
    const g = this.ctx.current;
    if (g !== this.countGen) {
      const own = this.route.gen;
      const name = own.config.pools[this.route.pool]!.name;
      const url = own.backendUrls[this.route.backend];
      const pi = g.config.pools.findIndex((p) => p.name === name);
      const k = pi < 0 ? -1 : g.config.pools[pi]!.backends.findIndex((b) => b.url === url);
      this.countGen = k < 0 ? own : g;
      this.countAt = k < 0 ? this.route.backend : g.state.poolFirstBackend(pi) + k;
      if (k < 0) return own.state; // checked again at the next count: cheap, and rare
    }
    return this.countGen.state;
  }

  /** A graceful stop's end. */
  goingAway(): void {
    this.upstream.close(1001, 'server shutting down');
    this.closing(1001, 'corelb');
    this.endClient(1001, 'server shutting down');
  }

  private endClient(code: number, reason: string | Uint8Array): void {
    const ws = this.ws;
    if (this.clientGone || ws === null) return;
    this.clientGone = true;
    // a code no close frame may carry (1005: the backend's close had none) ends without one
    if (isSendableCloseCode(code)) ws.end(code, reason);
    else ws.end();
  }

  private clientAbortedBeforeOpen(): void {
    if (this.res === null) return;
    this.logHandshake(ERRORS.CLB_ERR_CLIENT_ABORTED.status, 'CLB_ERR_CLIENT_ABORTED', 0);
    this.res = null;
    this.clientGone = true;
    this.upstream.destroy();
    this.release();
  }

  /** The backend's in-flight slot, once. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    this.route.gen.state.releaseInflight(this.route.backend);
    this.ctx.slotFreed();
  }
}

/** RFC 6455 §4.4: a 426 names the versions this side speaks. */
const VERSION_FIELD = ['sec-websocket-version', '13'] as const;

function refuse(res: uWS.HttpResponse, err: ProxyError, requestId: string, facts: ListenerFacts, ctx: WorkerContext): void {
  ctx.log.warn({ reqId: requestId, code: err.code, websocket: true }, err.message);
  answerAndClose(res, statusLine(err.code), requestId, false, false, facts.hsts, err.code === 'CLB_ERR_WEBSOCKET_VERSION' ? VERSION_FIELD : null);
}

/** The `app.ws` behaviour of one listener (made once per listener). */
export function websocketBehavior(ctx: WorkerContext, facts: ListenerFacts): uWS.WebSocketBehavior<RelayData> {
  const config = ctx.current.config;
  const wrap = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A): void => {
    try {
      fn(...a);
    } catch (e) {
      ctx.log.error({ err: e }, 'internal error in a WebSocket callback');
    }
  };
  return {
    compression: uWS.DISABLED,
    maxPayloadLength: config.limits.websocketMessageBytes,
    maxBackpressure: config.limits.websocketMessageBytes + 2 * CLIENT_HIGH,
    idleTimeout: Math.round(config.timeouts.websocketIdleMs / 1000),
    sendPingsAutomatically: true,
    upgrade: wrap((res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t) => {
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      const down = new UwsDownstream(res, req, facts);
      let route: WebSocketRoute | ProxyError;
      try {
        route = routeWebSocket(ctx, down);
      } catch (e) {
        ctx.log.error({ err: e }, 'internal error in a WebSocket handshake');
        answerAndClose(res, '500 Internal Server Error', '', false, false, facts.hsts);
        return;
      } finally {
        down.releaseRequest();
      }
      if ('code' in route && route instanceof Error) {
        refuse(res, route, '', facts, ctx);
        return;
      }
      new WebSocketRelay(ctx, route, res, facts, key, extensions, context);
    }),
    open: wrap((ws: uWS.WebSocket<RelayData>) => ws.getUserData().relay.attach(ws)),
    // the hot path: wrapped by hand (wrap's rest parameters would allocate an array per message)
    message: (ws: uWS.WebSocket<RelayData>, msg: ArrayBuffer, binary: boolean) => {
      try {
        ws.getUserData().relay.message(msg, binary);
      } catch (e) {
        ctx.log.error({ err: e }, 'internal error in a WebSocket callback');
      }
    },
    drain: wrap((ws: uWS.WebSocket<RelayData>) => ws.getUserData().relay.drain(ws)),
    ping: wrap((ws: uWS.WebSocket<RelayData>, msg: ArrayBuffer) => ws.getUserData().relay.ping(msg)),
    pong: wrap((ws: uWS.WebSocket<RelayData>, msg: ArrayBuffer) => ws.getUserData().relay.pong(msg)),
    close: wrap((ws: uWS.WebSocket<RelayData>, code: number, msg: ArrayBuffer) => ws.getUserData().relay.closed(code, msg)),
  };
}
