// Owns the uWebSockets.js front of one worker: one app per listener (plain, or TLS through
// tls.ts), listening on its shared port; each request handed to the engine through a Downstream
// that knows its listener's facts (scheme, port, HSTS); and closing down on request (listen
// sockets first, in-flight requests drained, then the apps). No exception may escape into uWS:
// it aborts the whole process. The only folder that imports uWebSockets.js is this one.

import uWS from 'uWebSockets.js';
import type { ListenerConfig } from '../config/types.js';
import { listenerAddress } from '../config/listeners.js';
import type { WorkerContext } from '../proxy/context.js';
import { ProxyExchange } from '../proxy/exchange.js';
import type { ProxyPhases } from '../proxy/phases.js';
import { answerAndClose, setInParse } from './refusal.js';
import { sslApp } from './tls.js';
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

export class FrontServer {
  private readonly listeners: readonly ListenerConfig[];
  private readonly apps: uWS.TemplatedApp[] = [];
  private listenSockets: uWS.us_listen_socket[] = [];

  /** Throws when uWS cannot build a listener's app (a certificate it cannot load). */
  constructor(ctx: WorkerContext, phases: ProxyPhases, listeners: readonly ListenerConfig[]) {
    this.listeners = listeners;
    try {
      for (const l of listeners) {
        const handler = handlerFor(ctx, phases, listenerFacts(l.tls !== null, l.port, l.tls?.hstsSeconds ?? null));
        const app = l.tls === null ? uWS.App() : sslApp(l.tls, handler);
        if (l.tls === null) app.any('/*', handler);
        this.apps.push(app);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Listen on every listener's address; rejects naming the first that fails. */
  async listen(): Promise<void> {
    for (let i = 0; i < this.apps.length; i++) {
      const l = this.listeners[i]!;
      const socket = await new Promise<uWS.us_listen_socket | false>((resolve) => this.apps[i]!.listen(l.host, l.port, resolve));
      if (socket === false) throw new Error(`cannot listen on ${listenerAddress(l)}`);
      this.listenSockets.push(socket);
    }
  }

  /** Stop accepting new connections; established ones keep being served. */
  stopAccepting(): void {
    for (const s of this.listenSockets) uWS.us_listen_socket_close(s);
    this.listenSockets = [];
  }

  /** Close every client connection. Call only when no request is in flight. */
  close(): void {
    this.stopAccepting();
    for (const app of this.apps) app.close();
  }
}
