// The keep-alive pool with real sockets: reuse, and the rule that a connection back in the pool
// belongs to its next exchange only (a late call from the previous one must not touch it).
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProxyError } from '../../../src/errors.js';
import type { Exchange, UpstreamConnection } from '../../../src/upstream/connection.js';
import { UpstreamPool } from '../../../src/upstream/pool.js';

const servers: net.Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));

/** A backend that answers every request head with `ok`, counting connections. */
async function backend(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        buf = buf.slice(end + 4);
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

/** A minimal exchange: sends GET /, collects the body, resolves on the end. */
function exchange() {
  let conn: UpstreamConnection | null = null;
  let body = '';
  let resolveDone!: (v: string) => void;
  let rejectDone!: (e: ProxyError) => void;
  const done = new Promise<string>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const ex: Exchange & { conn: () => UpstreamConnection | null; done: Promise<string> } = {
    conn: () => conn,
    done,
    onUpstreamReady(c) {
      conn = c;
      c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      c.endRequest();
    },
    onUpstreamError: (e) => rejectDone(e),
    onUpstreamDrain: () => {},
    batch: (fn) => fn(),
    onResponseHead: () => {},
    onResponseBody: (chunk) => (body += Buffer.from(chunk).toString()),
    onResponseEnd: () => resolveDone(body),
    onResponseInvalid: (reason) => rejectDone(new Error(reason) as ProxyError),
  };
  return ex;
}

const opts = { connectTimeoutMs: 2000, idleTimeoutMs: 60_000 };

describe('upstream pool', () => {
  it('reuses one keep-alive connection for sequential requests', async () => {
    const b = await backend();
    const pool = new UpstreamPool('127.0.0.1', b.port, opts);
    for (let k = 0; k < 5; k++) {
      const ex = exchange();
      pool.acquire(ex, false);
      expect(await ex.done).toBe('ok');
    }
    expect(b.connections()).toBe(1);
    pool.closeAll();
  });

  it('a late abandon or pause from the previous exchange does not touch the next one', async () => {
    const b = await backend();
    const pool = new UpstreamPool('127.0.0.1', b.port, opts);
    const first = exchange();
    pool.acquire(first, false);
    await first.done;
    const conn = first.conn()!;
    const second = exchange();
    pool.acquire(second, false);
    expect(second.conn()).toBe(conn); // the same connection, now the second's
    conn.pauseReading(first);
    conn.abandon(first);
    expect(await second.done).toBe('ok');
    expect(b.connections()).toBe(1);
    pool.closeAll();
  });

  it('a connection paused by its exchange reads again once it is back in the pool', async () => {
    const b = await backend();
    const pool = new UpstreamPool('127.0.0.1', b.port, opts);
    const ex = exchange();
    const ready = ex.onUpstreamReady.bind(ex);
    ex.onUpstreamReady = (c) => {
      ready(c);
      c.pauseReading(ex); // as for a slow client...
      setTimeout(() => c.resumeReading(ex), 50); // ...that catches up
    };
    const bodyCb = ex.onResponseBody.bind(ex);
    let pausedAtEnd = false;
    ex.onResponseBody = (chunk) => {
      bodyCb(chunk);
      ex.conn()!.pauseReading(ex); // the last bytes meet backpressure
      pausedAtEnd = true;
    };
    pool.acquire(ex, false);
    await ex.done;
    expect(pausedAtEnd).toBe(true);
    expect(ex.conn()!.socket.isPaused()).toBe(false);
    const next = exchange();
    pool.acquire(next, false);
    expect(await next.done).toBe('ok');
    pool.closeAll();
  });
});
