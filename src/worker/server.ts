// Owns the uWebSockets.js front of one worker: listen on the shared port, hand each request to a
// ProxyExchange, and close down on request (listen socket first, in-flight requests drained, then
// the app). No exception may escape into uWS: it aborts the whole process.

import uWS from 'uWebSockets.js';
import type { WorkerContext } from './context.js';
import { ProxyExchange } from './proxy.js';
import { answerAndClose, setInParse } from './refusal.js';

export class FrontServer {
  private readonly ctx: WorkerContext;
  private readonly app: uWS.TemplatedApp;
  private listenSocket: uWS.us_listen_socket | null = null;

  constructor(ctx: WorkerContext) {
    this.ctx = ctx;
    this.app = uWS.App();
    this.app.any('/*', (res, req) => {
      let exchange: ProxyExchange | null = null;
      setInParse(true);
      try {
        exchange = new ProxyExchange(ctx, res, req);
        exchange.start(req);
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
