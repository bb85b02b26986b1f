// The request engine (src/proxy/exchange.ts with the default phases) through a fake client side:
// a FakeDownstream plays the client, backends are real sockets on 127.0.0.1, the worker context
// and the shared buffer are the real ones. Every phase and failure path the end-to-end tests
// reach, in milliseconds each: pick, queue, send, retry, each error answer, lingering close, a cut
// response, a client that goes away, the drain's cut, backpressure both ways.
import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { formatProblem, parseConfig, type Config } from '../../../src/config/index.js';
import { layoutFor } from '../../../src/primary/data-plane.js';
import { WorkerContext } from '../../../src/proxy/context.js';
import { ProxyExchange } from '../../../src/proxy/exchange.js';
import { DefaultPhases } from '../../../src/proxy/phases.js';
import { BackendState } from '../../../src/shared/layout.js';
import { FakeDownstream, type FakeRequest } from '../../helpers/fake-downstream.js';
import { closeAllOrigins, eventually, startRawHttpOrigin, startRawOrigin, type RawExchange } from '../../helpers/origins.js';
import { closedPort } from '../../helpers/ports.js';
import { sleep } from '../../helpers/time.js';

type Line = Record<string, unknown>;

interface Rig {
  ctx: WorkerContext;
  lines: Line[];
  /** Runs one request through the engine, as the front's handler does. */
  request(req?: FakeRequest): FakeDownstream;
}

const contexts: WorkerContext[] = [];
afterEach(async () => {
  for (const c of contexts.splice(0)) c.close();
  await closeAllOrigins();
});

function configOf(backends: string[], extra = ''): Config {
  const text = `listen: { host: 127.0.0.1, port: 8080 }\nworkers: 1\nlog: { level: info, access: true }\n${extra}\npools:\n  web:\n    backends: [${backends.map((b) => `"${b}"`).join(', ')}]\n    retries: 2\n`;
  const r = parseConfig(text, 'test.yaml', { availableParallelism: 1 });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

function rig(backends: string[], extra = ''): Rig {
  const config = configOf(backends, extra);
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) });
  const ctx = new WorkerContext(config, layoutFor(config), log, 0, log);
  contexts.push(ctx);
  const phases = new DefaultPhases();
  return {
    ctx,
    lines,
    request(req: FakeRequest = {}) {
      const d = new FakeDownstream(req);
      const x = new ProxyExchange(ctx, phases, d);
      try {
        x.start();
      } catch (e) {
        x.internalError(e);
      }
      return d;
    },
  };
}

/** A backend answering every request with `status` and `body` (Content-Length). */
function okBackend(body = 'ok', status = 200) {
  return startRawHttpOrigin(({ socket }) => {
    socket.write(`HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\nX-From: backend\r\n\r\n${body}`);
  });
}

const access = (r: Rig): Line[] => r.lines.filter((l) => l.msg === 'access');
const done = (d: FakeDownstream) => () => d.answer.complete || d.answer.closed;

describe('the engine: answers', () => {
  it('proxies a GET: the backend answer streamed back, one access line', async () => {
    const b = await okBackend('hello');
    const r = rig([b.url]);
    const d = r.request({ target: '/a?x=1', headers: [['Host', 'example'], ['X-Test', '1']] });
    await eventually(done(d), 5000, 'the answer');
    expect(d.answer).toMatchObject({ status: 200, complete: true, closed: false });
    expect(d.answer.body.toString()).toBe('hello');
    expect(d.header1('x-from')).toBe('backend');
    const seen = b.requests[0]!.req;
    expect(seen.target).toBe('/a?x=1');
    expect(seen.headers.find(([k]) => k === 'x-forwarded-for')?.[1]).toBe('127.0.0.1');
    expect(access(r).map((l) => [l.status, l.code, l.backend])).toEqual([[200, null, b.url]]);
    expect(r.ctx.inflight).toBe(0);
  });

  it('streams a chunked request body to the backend, re-chunked', async () => {
    const b = await okBackend();
    const r = rig([b.url]);
    const d = r.request({ method: 'POST', headers: [['Host', 'x'], ['Transfer-Encoding', 'chunked']] });
    d.send('hello ', false);
    d.send('world', true);
    await eventually(done(d), 5000, 'the answer');
    const seen = b.requests[0]!.req;
    expect(seen.headers.find(([k]) => k === 'transfer-encoding')?.[1]).toBe('chunked');
    expect(seen.body.toString()).toBe('hello world');
  });

  it('refuses a framing it would read differently: 400, closed, nothing parsed after, nothing sent', async () => {
    const b = await okBackend();
    const r = rig([b.url]);
    const d = r.request({ method: 'POST', headers: [['Host', 'x'], ['Content-Length', '3'], ['Content-Length', '4']] });
    expect(d.answer).toMatchObject({ status: 400, closed: true, stopParsing: true });
    expect(d.readsBody).toBe(false);
    expect(access(r).map((l) => l.code)).toEqual(['CLB_ERR_BAD_REQUEST']);
    expect(b.connections()).toBe(0);
  });

  it('501 for a transfer coding other than chunked', async () => {
    const r = rig(['http://127.0.0.1:9']);
    const d = r.request({ method: 'POST', headers: [['Host', 'x'], ['Transfer-Encoding', 'gzip']] });
    expect(d.answer).toMatchObject({ status: 501, closed: true, stopParsing: true });
  });

  it('413 over max_body by Content-Length: held until the body has been read (lingering close), the connection kept', async () => {
    const r = rig(['http://127.0.0.1:9'], 'limits: { max_body: 4 }');
    const d = r.request({ method: 'POST', headers: [['Host', 'x'], ['Content-Length', '10']] });
    expect(d.answered).toBe(false);
    d.send('01234', false);
    expect(d.answered).toBe(false);
    d.send('56789', true);
    expect(d.answer).toMatchObject({ status: 413, complete: true, closed: false });
  });

  it('413 when a chunked body grows past max_body while streaming', async () => {
    const b = await startRawHttpOrigin(() => undefined);
    const r = rig([b.url], 'limits: { max_body: 4 }');
    const d = r.request({ method: 'POST', headers: [['Host', 'x'], ['Transfer-Encoding', 'chunked']] });
    d.send('0123456789', false);
    d.send('', true);
    await eventually(done(d), 5000, 'the answer');
    expect(d.answer.status).toBe(413);
  });

  it('404 when no route matches', async () => {
    const r = rig(['http://127.0.0.1:9'], 'routes: [{ path_prefix: /api, pool: web }]');
    const d = r.request({ target: '/other' });
    expect(d.answer).toMatchObject({ status: 404, complete: true });
    expect(access(r).map((l) => [l.code, l.backend])).toEqual([['CLB_ERR_NO_ROUTE', null]]);
  });

  it('503 at once when every backend is down', async () => {
    const b = await okBackend();
    const r = rig([b.url]);
    r.ctx.current.state.setState(0, BackendState.Down);
    const d = r.request();
    expect(d.answer).toMatchObject({ status: 503, complete: true });
    expect(access(r)[0]!.code).toBe('CLB_ERR_NO_BACKEND');
  });

  it('echoes Connection: close when the front will close after the answer', async () => {
    const b = await okBackend();
    const r = rig([b.url]);
    const d = r.request({ headers: [['Host', 'x'], ['Connection', 'close']] });
    await eventually(done(d), 5000, 'the answer');
    expect(d.header1('connection')).toBe('close');
  });

  it('a HEAD answer reports the backend\'s Content-Length without a body', async () => {
    const b = await startRawHttpOrigin(({ socket }) => void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n'));
    const r = rig([b.url]);
    const d = r.request({ method: 'HEAD' });
    await eventually(done(d), 5000, 'the answer');
    expect(d.answer).toMatchObject({ status: 200, contentLength: 1234, complete: true });
    expect(d.answer.body.length).toBe(0);
  });
});

describe('the engine: failures and retries', () => {
  it('a refused connection is retried on another backend; the retry is logged', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const b = await okBackend('second');
    const r = rig([dead, b.url]);
    // round-robin from a per-worker seed: send until one request starts on the dead backend
    for (let i = 0; i < 4; i++) {
      const d = r.request({ target: `/r${i}` });
      await eventually(done(d), 5000, 'the answer');
      expect(d.answer.status).toBe(200);
    }
    expect(r.lines.some((l) => l.msg === 'retrying on another backend' && l.code === 'CLB_ERR_CONNECT' && l.next === b.url)).toBe(true);
  });

  it('502 when the only backend refuses (no other to retry on)', async () => {
    const r = rig([`http://127.0.0.1:${await closedPort()}`]);
    const d = r.request();
    await eventually(done(d), 5000, 'the answer');
    expect(d.answer.status).toBe(502);
    expect(r.lines.filter((l) => l.code === 'CLB_ERR_CONNECT' && l.msg !== 'access').length).toBe(1);
  });

  it('504 when no response head comes within timeouts.response', async () => {
    const b = await startRawHttpOrigin(() => undefined);
    const r = rig([b.url], 'timeouts: { response: 150ms }');
    const d = r.request();
    await eventually(done(d), 5000, 'the answer');
    expect(d.answer.status).toBe(504);
    expect(access(r)[0]!.code).toBe('CLB_ERR_RESPONSE_TIMEOUT');
  });

  it('502 for an invalid response, and that connection is closed', async () => {
    const b = await startRawHttpOrigin(({ socket }) => void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok'));
    const r = rig([b.url]);
    const d = r.request();
    await eventually(done(d), 5000, 'the answer');
    expect(d.answer.status).toBe(502);
    await eventually(() => b.sockets[0]!.destroyed || b.sockets[0]!.readableEnded, 5000, 'the connection closed');
  });

  it('a backend that fails mid-body: the client\'s response is cut, never complete', async () => {
    const b = await startRawOrigin((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial')));
    const r = rig([b.url]);
    const d = r.request();
    await eventually(done(d), 5000, 'the cut');
    expect(d.answer).toMatchObject({ status: 200, closed: true, complete: false });
    expect(access(r)[0]!.code).toBe('CLB_ERR_RESET');
  });

  it('a kept-alive connection the backend closed is repeated once on a fresh one', async () => {
    let n = 0;
    const b = await startRawHttpOrigin(({ socket }) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      // the first connection goes stale right after its first answer, without saying so
      if (n++ === 0) setTimeout(() => socket.destroy(), 20);
    });
    const r = rig([b.url]);
    const first = r.request();
    await eventually(done(first), 5000, 'the first answer');
    await sleep(60);
    const second = r.request();
    await eventually(done(second), 5000, 'the second answer');
    expect(second.answer.status).toBe(200);
  });
});

describe('the engine: waiting, going away, backpressure', () => {
  it('queues at max_connections_per_backend, sends when a slot frees; 503 after timeouts.queue', async () => {
    const held: RawExchange[] = [];
    const b = await startRawHttpOrigin((x) => void held.push(x));
    const r = rig([b.url], 'limits: { max_connections_per_backend: 1 }\ntimeouts: { queue: 300ms }');
    const first = r.request({ target: '/1' });
    await eventually(() => held.length === 1, 5000, 'the first request at the backend');
    const second = r.request({ target: '/2' });
    expect(second.answered).toBe(false);
    held[0]!.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na');
    await eventually(() => held.length === 2, 5000, 'the queued request sent');
    expect(first.answer.status).toBe(200);
    const third = r.request({ target: '/3' });
    await eventually(done(third), 5000, 'the queue timeout');
    expect(third.answer.status).toBe(503);
    expect(access(r).find((l) => l.path === '/3')!.code).toBe('CLB_ERR_QUEUE_TIMEOUT');
  });

  it('a client that goes away cancels the upstream request (499, logged at info)', async () => {
    const held: RawExchange[] = [];
    const b = await startRawHttpOrigin((x) => void held.push(x));
    const r = rig([b.url]);
    const d = r.request();
    await eventually(() => held.length === 1, 5000, 'the request at the backend');
    d.abort();
    await eventually(() => held[0]!.socket.destroyed || held[0]!.socket.readableEnded, 5000, 'the upstream connection closed');
    expect(access(r).map((l) => [l.status, l.code])).toEqual([[499, 'CLB_ERR_CLIENT_ABORTED']]);
    expect(r.ctx.inflight).toBe(0);
  });

  it('the end of a drain cuts a request: CLB_ERR_DRAIN_TIMEOUT, not the client\'s doing', async () => {
    const b = await startRawHttpOrigin(() => undefined);
    const r = rig([b.url]);
    const d = r.request();
    await eventually(() => b.requests.length === 1, 5000, 'the request at the backend');
    r.ctx.cutting = true;
    d.abort(); // what app.close() does to the connection
    expect(access(r).map((l) => [l.status, l.code])).toEqual([[503, 'CLB_ERR_DRAIN_TIMEOUT']]);
    expect(r.lines.some((l) => l.code === 'CLB_ERR_DRAIN_TIMEOUT' && l.msg === 'timeouts.drain is over: request cut')).toBe(true);
  });

  it('a slow client pauses the backend; the body completes once it reads', async () => {
    const big = 'x'.repeat(300_000);
    const b = await startRawOrigin((s) =>
      s.once('data', () => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
        s.write(big);
      }),
    );
    const r = rig([b.url]);
    const d = new FakeDownstream();
    d.window = 1000;
    const x = new ProxyExchange(r.ctx, new DefaultPhases(), d);
    x.start();
    await eventually(() => d.waitingForWritable, 5000, 'backpressure');
    expect(d.answer.complete).toBe(false);
    for (let i = 0; i < 200 && !d.answer.complete; i++) {
      d.drain(d.writeOffset() + 64 * 1024);
      await sleep(5);
    }
    expect(d.answer.complete).toBe(true);
    expect(d.answer.body.length).toBe(big.length);
  });

  it('chunks of a chunked response that arrive while the client is backed up are held, in order, then ended', async () => {
    const b = await startRawOrigin((s) =>
      s.once('data', () => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n6\r\nsecond\r\n5\r\nthird\r\n0\r\n\r\n')),
    );
    const r = rig([b.url]);
    const d = new FakeDownstream();
    d.window = 3; // the first chunk already backs the client up
    const x = new ProxyExchange(r.ctx, new DefaultPhases(), d);
    x.start();
    await eventually(() => d.waitingForWritable, 5000, 'backpressure');
    expect(d.answer.body.toString()).toBe('first');
    expect(d.answer.complete).toBe(false);
    d.drain();
    expect(d.answer.body.toString()).toBe('firstsecondthird');
    expect(d.answer.complete).toBe(true);
    expect(d.misuse).toEqual([]);
  });

  it('a chunk that does not fit in the batch is written after it, in a cork of its own, in order', async () => {
    const big = 'x'.repeat(3000);
    const b = await startRawOrigin((s) =>
      s.once('data', () => s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n${(3000).toString(16)}\r\n${big}\r\n5\r\nthird\r\n0\r\n\r\n`)),
    );
    const r = rig([b.url]);
    const d = new FakeDownstream();
    d.corkRoom = 1000; // the head and 'first' fit, the 3000-byte chunk does not
    const x = new ProxyExchange(r.ctx, new DefaultPhases(), d);
    x.start();
    await eventually(() => d.answer.complete, 5000, 'the response ended');
    expect(d.answer.body.toString()).toBe('first' + big + 'third');
    expect(d.misuse).toEqual([]);
  });

  it('a backend that is slow to take an upload pauses the client', async () => {
    const b = await startRawOrigin((s) => s.pause()); // reads nothing
    const r = rig([b.url], 'limits: { max_body: 100mb }');
    const d = r.request({ method: 'POST', headers: [['Host', 'x'], ['Content-Length', String(64 * 1024 * 1024)]] });
    const chunk = Buffer.alloc(1024 * 1024, 97);
    for (let i = 0; i < 64 && !d.paused; i++) {
      d.send(chunk, false);
      await sleep(2);
    }
    expect(d.paused).toBe(true);
    d.abort();
  });

  it('an exception inside a phase is a 500 with the request id logged; the worker carries on', async () => {
    const b = await okBackend();
    const r = rig([b.url]);
    class Throwing extends DefaultPhases {
      override selectBackend(): number {
        throw new Error('boom');
      }
    }
    const d = new FakeDownstream({ headers: [['Host', 'x'], ['X-Request-Id', 'rid-7']] });
    const x = new ProxyExchange(r.ctx, new Throwing(), d);
    try {
      x.start();
    } catch (e) {
      x.internalError(e);
    }
    expect(d.answer).toMatchObject({ status: 500, closed: true, stopParsing: false });
    expect(r.lines.some((l) => l.reqId === 'rid-7' && l.msg === 'internal error: boom')).toBe(true);
    const next = r.request();
    await eventually(done(next), 5000, 'the next answer');
    expect(next.answer.status).toBe(200);
    expect(r.ctx.inflight).toBe(0);
  });
});
