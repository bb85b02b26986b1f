// Owns the uWebSockets.js front of one worker: one app per listener (plain, TLS through tls.ts,
// or a redirect to HTTPS through redirect.ts), listening on its shared port; each request handed to the engine through a Downstream
// that knows its listener's facts (scheme, port, HSTS); a reload that changed a TLS listener's
// certificates (new connections get the new ones, open ones carry on: see reloadListeners); and
// closing down on request (listen sockets first, in-flight requests drained, then the apps). No
// exception may escape into uWS: it aborts the whole process. The only folder that imports
// uWebSockets.js is this one.

import uWS from 'uWebSockets.js';
import type { ListenerConfig } from '../config/types.js';
import { listenerAddress } from '../config/listeners.js';
import type { WorkerContext } from '../proxy/context.js';
import { ProxyExchange } from '../proxy/exchange.js';
import type { ProxyPhases } from '../proxy/phases.js';
import { redirectHandler } from './redirect.js';
import { answerAndClose, setInParse } from './refusal.js';
import { sslApp } from './tls.js';
import { closeWebSockets, websocketBehavior } from './websocket.js';
import { listenerFacts, UwsDownstream, type ListenerFacts } from './uws-downstream.js';

type Handler = (res: uWS.HttpResponse, req: uWS.HttpRequest) => void;

/** The request handler of one listener: made once per listener, not per request. */
function handlerFor(ctx: WorkerContext, phases: ProxyPhases, facts: ListenerFacts): Handler {
  return (res, req) => {
    let exchange: ProxyExchange | null = null;
    const down = new UwsDownstream(res, req, facts);
    setInParse(true);
    try {
      exchange = new ProxyExchange(ctx, phases, down);
      exchange.start();
    } catch (e) {
      if (exchange !== null) {
        exchange.internalError(e);
      } else {
        ctx.log.error({ err: e }, 'internal error before the request was read');
        try {
          answerAndClose(res, '500 Internal Server Error', '', false, false, facts.hsts);
        } catch {
          // the response may already be gone; nothing else to do
        }
      }
    }
    setInParse(false);
    down.releaseRequest();
  };
}

/** One listener's app and its listen socket; a retired one only serves its open connections. */
interface Served {
  readonly listener: ListenerConfig;
  readonly app: uWS.TemplatedApp;
  socket: uWS.us_listen_socket | null;
  /** Open client connections (uWS's filter), to close a retired app once it has none. */
  connections: number;
  retired: boolean;
  closed: boolean;
}

/** The listen socket of `s`, or false when uWS could not listen (the callback runs synchronously). */
function listenOn(s: Served): Promise<uWS.us_listen_socket | false> {
  return new Promise((resolve) => s.app.listen(s.listener.host, s.listener.port, resolve));
}

export class FrontServer {
  private readonly ctx: WorkerContext;
  private readonly phases: ProxyPhases;
  private served: Served[] = [];
  /** Apps replaced by a reload that still hold client connections. */
  private readonly retired = new Set<Served>();

  /** Throws when uWS cannot build a listener's app (a certificate it cannot load). */
  constructor(ctx: WorkerContext, phases: ProxyPhases, listeners: readonly ListenerConfig[]) {
    this.ctx = ctx;
    this.phases = phases;
    try {
      for (const l of listeners) this.served.push(this.build(l));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private build(l: ListenerConfig): Served {
    const facts = listenerFacts(l.tls !== null, l.port, l.tls?.hstsSeconds ?? null);
    const proxying = l.redirectHttps === null;
    const handler = proxying ? handlerFor(this.ctx, this.phases, facts) : redirectHandler(l.redirectHttps, l.acmeWebroot);
    // WebSocket handshakes (a GET with a Sec-WebSocket-Key) go to the ws behaviour; uWS hands
    // every other request to `handler` untouched
    const ws = proxying ? websocketBehavior(this.ctx, facts) : null;
    const app = l.tls === null ? uWS.App() : sslApp(l.tls, handler, ws);
    if (l.tls === null) {
      if (ws !== null) app.ws('/*', ws);
      app.any('/*', handler);
    }
    const s: Served = { listener: l, app, socket: null, connections: 0, retired: false, closed: false };
    if (l.tls !== null) app.filter((_res, count) => this.counted(s, count as number));
    return s;
  }

  /** uWS's filter: a connection opened (+1) or closed (-1). Runs inside uWS: never throws. */
  private counted(s: Served, count: number): void {
    s.connections += count;
    // closed on the next turn: not from inside uWS's close of that very connection
    if (s.retired && s.connections <= 0) setImmediate(() => this.closeRetired(s));
  }

  private closeRetired(s: Served): void {
    if (s.closed || s.connections > 0) return;
    s.closed = true;
    this.retired.delete(s);
    try {
      s.app.close();
    } catch (e) {
      this.ctx.log.error({ err: e }, 'cannot close a replaced TLS listener');
    }
  }

  /** Listen on every listener's address; rejects naming the first that fails. */
  async listen(): Promise<void> {
    for (const s of this.served) {
      const socket = await listenOn(s);
      if (socket === false) throw new Error(`cannot listen on ${listenerAddress(s.listener)}`);
      s.socket = socket;
    }
  }

  /**
   * A reload: every TLS listener whose settings or certificate files changed gets a new SSLApp
   * (uWS cannot replace a context in place, and removeServerName frees the router that open
   * connections of that name still use), listening on the same address (SO_REUSEPORT) before
   * the old listen socket closes; the old app keeps serving its open connections and is closed
   * when the last one ends. Addresses are the same as before (the primary keeps them otherwise).
   * Returns the addresses swapped; a listener whose new app cannot be built keeps the old one.
   */
  async reloadListeners(listeners: readonly ListenerConfig[]): Promise<string[]> {
    const swapped: string[] = [];
    for (let i = 0; i < this.served.length && i < listeners.length; i++) {
      const old = this.served[i]!;
      const l = listeners[i]!;
      if (l.tls === null || JSON.stringify(l.tls) === JSON.stringify(old.listener.tls)) continue;
      let next: Served;
      try {
        next = this.build(l);
      } catch (e) {
        this.ctx.log.error({ err: e, listen: listenerAddress(l) }, 'reload: cannot load the new certificates; this listener keeps the old ones');
        continue;
      }
      if (old.socket === null) {
        // not listening (draining): nothing to hand over
        next.app.close();
        continue;
      }
      const socket = await listenOn(next);
      if (socket === false) {
        this.ctx.log.error({ listen: listenerAddress(l) }, 'reload: cannot listen with the new certificates; this listener keeps the old ones');
        next.app.close();
        continue;
      }
      next.socket = socket;
      uWS.us_listen_socket_close(old.socket);
      old.socket = null;
      old.retired = true;
      this.retired.add(old);
      this.served[i] = next;
      if (old.connections <= 0) setImmediate(() => this.closeRetired(old));
      swapped.push(listenerAddress(l));
    }
    return swapped;
  }

  /** Stop accepting new connections; established ones keep being served. */
  stopAccepting(): void {
    for (const s of this.served) {
      if (s.socket !== null) uWS.us_listen_socket_close(s.socket);
      s.socket = null;
    }
  }

  /** The end of a drain: every proxied WebSocket closed with 1001 (both sides), waited up to `ms`. */
  closeWebSockets(ms: number): Promise<void> {
    return closeWebSockets(ms);
  }

  /** Close every client connection. Call only when no request is in flight. */
  close(): void {
    this.stopAccepting();
    for (const s of [...this.served, ...this.retired]) {
      if (s.closed) continue;
      s.closed = true;
      s.app.close();
    }
    this.retired.clear();
  }
}
