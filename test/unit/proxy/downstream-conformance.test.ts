// One conformance suite for every Downstream (Hono's habit, like the balancers' suite): the uWS
// adapter over a real uWebSockets.js server and a raw client socket, and the FakeDownstream the
// engine's unit tests use. The same handlers, written against the interface alone, must give the
// same answers on both; a fake that drifts from the real front fails here.
import net from 'node:net';
import uWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenerFacts, UwsDownstream } from '../../../src/front/uws-downstream.js';
import type { Downstream } from '../../../src/proxy/downstream.js';
import { FakeDownstream } from '../../helpers/fake-downstream.js';
import { readResponse, SocketReader } from '../../helpers/raw.js';
import { eventually, sleep } from '../../helpers/time.js';

interface ClientSpec {
  method?: string;
  target?: string;
  headers?: [string, string][];
  body?: string;
  /** The client goes away this long after sending, without waiting for an answer. */
  abortAfterMs?: number;
}

interface Observed {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The connection was closed after (or instead of) the answer. */
  closed: boolean;
}

/** What a handler saw, besides the answer. */
interface Seen {
  aborted: boolean;
  notes: string[];
}

type Handler = (d: Downstream, seen: Seen) => void;

interface Harness {
  setup(): Promise<void>;
  teardown(): Promise<void>;
  exchange(handler: Handler, spec: ClientSpec): Promise<{ answer: Observed | null; seen: Seen }>;
}


function wireOf(spec: ClientSpec): string {
  const headers = spec.headers ?? [['Host', 'x']];
  const body = spec.body ?? '';
  const lines = headers.map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `${spec.method ?? 'GET'} ${spec.target ?? '/'} HTTP/1.1\r\n${lines}${body.length > 0 ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`;
}

function uwsHarness(): Harness {
  let app: uWS.TemplatedApp;
  let listen: uWS.us_listen_socket | false = false;
  let port = 0;
  let current: { handler: Handler; seen: Seen } | null = null;
  return {
    async setup() {
      app = uWS.App().any('/*', (res, req) => {
        const d = new UwsDownstream(res, req, listenerFacts(false, 8080, null));
        const c = current!;
        try {
          c.handler(d, c.seen);
        } catch (e) {
          c.seen.notes.push('threw ' + String(e));
          res.close();
        }
        d.releaseRequest();
      });
      await new Promise<void>((resolve) =>
        app.listen('127.0.0.1', 0, (s) => {
          listen = s;
          port = uWS.us_socket_local_port(s as unknown as uWS.us_socket);
          resolve();
        }),
      );
    },
    async teardown() {
      if (listen !== false) uWS.us_listen_socket_close(listen);
      app.close();
    },
    async exchange(handler, spec) {
      const seen: Seen = { aborted: false, notes: [] };
      current = { handler, seen };
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('connect', r));
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      let isClosed = false;
      void closed.then(() => (isClosed = true));
      socket.write(wireOf(spec));
      if (spec.abortAfterMs !== undefined) {
        await sleep(spec.abortAfterMs);
        socket.destroy();
        // uWS sees the close on a later turn of its loop: wait for it, bounded
        await eventually(() => seen.aborted, 3000, 'onAborted').catch(() => undefined);
        return { answer: null, seen };
      }
      const r = await readResponse(new SocketReader(socket), spec.method ?? 'GET');
      await Promise.race([closed, sleep(200)]);
      socket.destroy();
      if (r === null) return { answer: null, seen };
      const headers: Record<string, string> = {};
      for (const [k, v] of r.headers) headers[k.toLowerCase()] = v;
      return { answer: { status: r.status, headers, body: r.body.toString('latin1'), closed: isClosed }, seen };
    },
  };
}

function fakeHarness(): Harness {
  return {
    async setup() {},
    async teardown() {},
    async exchange(handler, spec) {
      const seen: Seen = { aborted: false, notes: [] };
      const d = new FakeDownstream({ method: spec.method, target: spec.target, headers: spec.headers ?? [['Host', 'x']] });
      handler(d, seen);
      if (spec.body !== undefined && d.readsBody) d.send(spec.body, true);
      if (spec.abortAfterMs !== undefined) {
        await sleep(spec.abortAfterMs);
        d.abort();
        return { answer: null, seen };
      }
      for (let i = 0; i < 100 && !d.answer.complete && !d.answer.closed; i++) await sleep(5);
      const a = d.answer;
      if (a.status === 0) return { answer: null, seen };
      const headers: Record<string, string> = {};
      for (const [k, v] of a.headers) headers[k] = v;
      if (a.contentLength !== null) headers['content-length'] = String(a.contentLength);
      return { answer: { status: a.status, headers, body: (spec.method ?? 'GET') === 'HEAD' ? '' : a.body.toString('latin1'), closed: a.closed }, seen };
    },
  };
}

function conformance(name: string, make: () => Harness): void {
  describe(`Downstream conformance: ${name}`, () => {
    const h = make();
    beforeAll(() => h.setup());
    afterAll(() => h.teardown());

    it('reads the request head while the handler runs', async () => {
      const { answer } = await h.exchange(
        (d) => {
          const fields: string[] = [];
          d.forEachField((k, v) => fields.push(`${k}=${v}`));
          d.end(JSON.stringify({ method: d.method(), url: d.url(), query: d.query() ?? null, b: d.queryParameter('b') ?? null, host: d.header('host'), fields, addr: d.clientAddress() }));
        },
        { method: 'PATCH', target: '/a/b?b=2&c=3', headers: [['Host', 'x'], ['X-Test', 'one']] },
      );
      expect(JSON.parse(answer!.body)).toEqual({ method: 'PATCH', url: '/a/b', query: 'b=2&c=3', b: '2', host: 'x', fields: ['host=x', 'x-test=one'], addr: '127.0.0.1' });
    });

    it('no query: undefined', async () => {
      const { answer } = await h.exchange((d) => d.end(String(d.query())), { target: '/plain' });
      expect(answer!.body).toBe('undefined');
    });

    it('writeHead with field lines, writeHeader and end(body) in one cork', async () => {
      const { answer } = await h.exchange(
        (d) =>
          d.cork(() => {
            d.writeHead('201 Created\r\nx-a: 1');
            d.writeHeader('x-b', '2');
            d.end('hello');
          }),
        {},
      );
      expect(answer).toMatchObject({ status: 201, body: 'hello', closed: false });
      expect(answer!.headers['x-a']).toBe('1');
      expect(answer!.headers['x-b']).toBe('2');
    });

    it('write() streams a body of unknown length; end() completes it', async () => {
      const { answer } = await h.exchange(
        (d) => {
          d.writeHead('200 OK');
          d.write(Buffer.from('abc'));
          d.write(Buffer.from('def'));
          d.end();
        },
        {},
      );
      expect(answer).toMatchObject({ status: 200, body: 'abcdef' });
    });

    it('tryEnd() with the total: done once every byte was given', async () => {
      const { answer, seen } = await h.exchange(
        (d, s) => {
          d.writeHead('200 OK');
          const first = d.tryEnd(Buffer.from('abc'), 6);
          s.notes.push(`first ${first.join(',')} offset ${d.writeOffset()}`);
          const second = d.tryEnd(Buffer.from('def'), 6);
          s.notes.push(`second ${second.join(',')}`);
        },
        {},
      );
      expect(answer).toMatchObject({ status: 200, body: 'abcdef' });
      expect(answer!.headers['content-length']).toBe('6');
      expect(seen.notes).toEqual(['first true,false offset 3', 'second true,true']);
    });

    it('endWithoutBody(length) answers a HEAD with that Content-Length and no body', async () => {
      const { answer } = await h.exchange((d) => d.endWithoutBody(5), { method: 'HEAD' });
      expect(answer).toMatchObject({ status: 200, body: '' });
      expect(answer!.headers['content-length']).toBe('5');
    });

    it('onData delivers the request body, the last chunk marked', async () => {
      const { answer } = await h.exchange(
        (d) => {
          let got = '';
          d.onAborted(() => undefined);
          d.onData((chunk, last) => {
            got += Buffer.from(chunk).toString();
            if (last) d.cork(() => d.end('got ' + got));
          });
        },
        { method: 'POST', body: 'hello world' },
      );
      expect(answer!.body).toBe('got hello world');
    });

    it('an answer given later, outside the handler, in a cork', async () => {
      const { answer } = await h.exchange(
        (d) => {
          d.onAborted(() => undefined);
          setTimeout(() => d.cork(() => d.end('later')), 10);
        },
        {},
      );
      expect(answer!.body).toBe('later');
    });

    it('onAborted runs when the client goes away before the answer', async () => {
      const { seen } = await h.exchange(
        (d, s) => {
          d.onAborted(() => (s.aborted = true));
        },
        { abortAfterMs: 30 },
      );
      expect(seen.aborted).toBe(true);
    });

    it('close() cuts the connection and runs onAborted before it returns', async () => {
      const { answer, seen } = await h.exchange(
        (d, s) => {
          d.onAborted(() => (s.aborted = true));
          setTimeout(() => {
            d.cork(() => {
              d.writeHead('200 OK');
              d.tryEnd(Buffer.from('part'), 100);
            });
            d.close();
            s.notes.push(`aborted at return: ${s.aborted}`);
          }, 5);
        },
        {},
      );
      expect(seen.notes).toEqual(['aborted at return: true']);
      if (answer !== null) expect(answer.body.length).toBeLessThan(100);
    });

    it('answerAndClose: the status, the request id, Connection: close, then the connection ends', async () => {
      const { answer } = await h.exchange((d) => d.answerAndClose('400 Bad Request', 'rid-1', false, false), {});
      expect(answer).toMatchObject({ status: 400, closed: true });
      expect(answer!.headers['x-request-id']).toBe('rid-1');
      expect(answer!.headers.connection?.toLowerCase()).toBe('close');
      expect(answer!.body.trimEnd()).toBe('400 Bad Request');
    });
  });
}

conformance('uWebSockets.js (src/front/uws-downstream.ts)', uwsHarness);
conformance('FakeDownstream (test/helpers/fake-downstream.ts)', fakeHarness);
