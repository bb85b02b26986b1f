// Owns the uWebSockets.js front of one worker: listen on the shared port, hand each request to the
// engine through a Downstream, and close down on request (listen socket first, in-flight requests
// drained, then the app). No exception may escape into uWS: it aborts the whole process. The only
// folder that imports uWebSockets.js is this one.

import uWS from 'uWebSockets.js';
import type { WorkerContext } from '../proxy/context.js';
import { ProxyExchange } from '../proxy/exchange.js';
import type { ProxyPhases } from '../proxy/phases.js';
import { answerAndClose, setInParse } from './refusal.js';
import { UwsDownstream } from './uws-downstream.js';

export class FrontServer {
  private readonly app: uWS.TemplatedApp;
  private listenSocket: uWS.us_listen_socket | null = null;

  constructor(ctx: WorkerContext, phases: ProxyPhases) {
    this.app = uWS.App();
    this.app.any('/*', (res, req) => {
      let exchange: ProxyExchange | null = null;
      const down = new UwsDownstream(res, req);
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
            answerAndClose(res, '500 Internal Server Error', '', false, false);
          } catch {
            // the response may already be gone; nothing else to do
          }
        }
      }
      setInParse(false);
      down.releaseRequest();
    });
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (socket === false) reject(new Error(`cannot listen on ${host}:${port}`));
        else {
          this.listenSocket = socket;
          resolve();
        }
      });
    });
  }

  /** Stop accepting new connections; established ones keep being served. */
  stopAccepting(): void {
    if (this.listenSocket !== null) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /** Close every client connection. Call only when no request is in flight. */
  close(): void {
    this.stopAccepting();
    this.app.close();
  }
}
