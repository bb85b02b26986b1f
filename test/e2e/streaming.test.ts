// Bodies stream both ways with backpressure: 200 MB up and down with equal SHA-256 and bounded
// proxy RSS, a slow reader, chunked request bodies, and origins that die in the middle of a body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { corelbConfig, sampleRss, startCorelb, type Corelb } from '../helpers/corelb.js';
import { echoOrigin, eventually, startOrigin, startRawHttpOrigin, type EchoBody } from '../helpers/origins.js';
import { request, requestHashed } from '../helpers/http.js';
import { MB, deterministicSha256, deterministicStream } from '../helpers/data.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 240_000;
const BIG = 200 * MB;
const RSS_LIMIT = 100 * MB;

let lb: Corelb;
let sourceUrl = '';
/** Bytes the download origin has handed to node:http per request url, to see backpressure. */
const sourceSent = new Map<string, number>();

beforeAll(async () => {
  const sink = await echoOrigin('sink');
  const source = await startOrigin((req, res) => {
    const m = /^\/bytes\/(\d+)(?:\?seed=(\d+))?(?:&chunked=1)?$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const n = Number(m[1]);
    const seed = Number(m[2] ?? 1);
    const chunked = (req.url ?? '').includes('chunked=1');
    res.writeHead(200, chunked ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': n });
    const s: Readable = deterministicStream(n, seed);
    let sent = 0;
    s.on('data', (c: Buffer) => {
      sent += c.length;
      sourceSent.set(req.url ?? '', sent);
    });
    s.pipe(res);
    res.on('close', () => s.destroy());
  });
  sourceUrl = source.url;
  const cut = await startRawHttpOrigin(({ req, socket }) => {
    if (req.target === '/cut/content-length') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n');
      socket.write(Buffer.alloc(500_000, 0x61), () => setTimeout(() => socket.destroy(), 50));
      return 'stop';
    }
    if (req.target === '/cut/chunked') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = Buffer.alloc(100_000, 0x62);
      for (let i = 0; i < 3; i++) socket.write(`${chunk.length.toString(16)}\r\n`), socket.write(chunk), socket.write('\r\n');
      socket.write('', () => setTimeout(() => socket.destroy(), 50));
      return 'stop';
    }
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  lb = await startCorelb(
    corelbConfig({
      workers: 2,
      limits: { max_body: '1gb', max_connections_per_backend: 0 },
      timeouts: { connect: '2s', response: '30s', idle: '60s' },
      pools: { sink: [sink.url], source: [source.url], cut: [cut.url] },
      routes: [
        { path_prefix: '/upload', pool: 'sink' },
        { path_prefix: '/bytes', pool: 'source' },
        { path_prefix: '/cut', pool: 'cut' },
      ],
    }),
  );
  // warm every path once so that baseline RSS includes the connection pools and code paths
  await request(`${lb.url}/upload/warm`, { method: 'POST', body: 'x' });
  await request(`${lb.url}/bytes/1000`);
  await request(`${lb.url}/cut/ok`);
}, 60_000);

afterAll(stopEverything);

const mb = (n: number) => `${(n / MB).toFixed(1)} MB`;
/** E2E_VERBOSE=1 prints the measured numbers (RSS growth, bytes in flight). */
const note = (msg: string) => {
  if (process.env.E2E_VERBOSE) console.log(`[streaming] ${msg}`);
};

describe('large bodies', () => {
  it('a 200 MB upload arrives intact and the proxy RSS stays flat', async () => {
    const expected = deterministicSha256(BIG, 7);
    const baseline = lb.rssBytes();
    const rss = sampleRss(() => lb.rssBytes());
    const r = await request(`${lb.url}/upload/big`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': BIG },
      body: deterministicStream(BIG, 7),
      timeoutMs: T - 20_000,
    });
    const growth = rss.stop() - baseline;
    note(`upload: baseline ${mb(baseline)}, growth ${mb(growth)}`);
    expect(r.status).toBe(200);
    const e = JSON.parse(r.text) as EchoBody;
    expect(e.bodyLength).toBe(BIG);
    expect(e.bodySha256).toBe(expected);
    expect(growth, `RSS growth ${mb(growth)}`).toBeLessThan(RSS_LIMIT);
  }, T);

  it('a 200 MB download arrives intact and the proxy RSS stays flat', async () => {
    const expected = deterministicSha256(BIG, 11);
    const baseline = lb.rssBytes();
    const rss = sampleRss(() => lb.rssBytes());
    const r = await requestHashed(`${lb.url}/bytes/${BIG}?seed=11`, { timeoutMs: T - 20_000 });
    const growth = rss.stop() - baseline;
    note(`download: baseline ${mb(baseline)}, growth ${mb(growth)}`);
    expect(r.status).toBe(200);
    expect(r.complete).toBe(true);
    expect(r.length).toBe(BIG);
    expect(r.sha256).toBe(expected);
    expect(growth, `RSS growth ${mb(growth)}`).toBeLessThan(RSS_LIMIT);
  }, T);

  it('a slow reader of 200 MB does not make the proxy buffer the body', async () => {
    const expected = deterministicSha256(BIG, 13);
    const url = `/bytes/${BIG}?seed=13`;
    const baseline = lb.rssBytes();
    const rss = sampleRss(() => lb.rssBytes());
    let sentAfterStall = -1;
    let nextPause = 16 * MB;
    const r = await requestHashed(`${lb.url}${url}`, {
      timeoutMs: T - 20_000,
      onResponse: (res) => {
        // stall completely for 3 s right after the head: an unbounded proxy would now read the
        // whole body from the (fast) origin into memory
        res.pause();
        setTimeout(() => {
          sentAfterStall = sourceSent.get(url) ?? 0;
          res.resume();
        }, 3000);
      },
      onBytes: (total, res) => {
        if (total >= nextPause && nextPause < BIG) {
          nextPause += 16 * MB;
          res.pause();
          setTimeout(() => res.resume(), 100);
        }
      },
    });
    const growth = rss.stop() - baseline;
    note(`slow reader: baseline ${mb(baseline)}, growth ${mb(growth)}, origin had sent ${mb(sentAfterStall)} after the 3 s stall`);
    expect(r.status).toBe(200);
    expect(r.length).toBe(BIG);
    expect(r.sha256).toBe(expected);
    expect(sentAfterStall, `origin had sent ${mb(sentAfterStall)} while the client read nothing`).toBeLessThan(BIG / 2);
    expect(growth, `RSS growth ${mb(growth)}`).toBeLessThan(RSS_LIMIT);
  }, T);

  it('slow readers side by side on one worker: every body intact', async () => {
    // Upstream reads of one worker land in one shared buffer: a body chunk a slow client could
    // not take must be copied before another connection's read overwrites it.
    const one = await startCorelb(
      corelbConfig({ workers: 1, pools: { source: [sourceUrl] }, routes: [{ path_prefix: '/bytes', pool: 'source' }] }),
    );
    try {
      const n = 24 * MB;
      const seeds = [21, 22, 23, 24];
      const replies = await Promise.all(
        seeds.map((seed) => {
          let nextPause = 1 * MB;
          return requestHashed(`${one.url}/bytes/${n}?seed=${seed}`, {
            timeoutMs: T - 20_000,
            onBytes: (total, res) => {
              if (total >= nextPause) {
                nextPause += 1 * MB;
                res.pause();
                setTimeout(() => res.resume(), 20);
              }
            },
          });
        }),
      );
      replies.forEach((r, k) => {
        expect(r.status).toBe(200);
        expect(r.length).toBe(n);
        expect(r.sha256, `body of seed ${seeds[k]}`).toBe(deterministicSha256(n, seeds[k]!));
      });
    } finally {
      await one.stop();
    }
  }, T);

  it('a chunked request body (no Content-Length) passes through intact', async () => {
    const n = 5 * MB + 12_345;
    const r = await request(`${lb.url}/upload/chunked`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' }, // node sends Transfer-Encoding: chunked
      body: deterministicStream(n, 3),
      timeoutMs: 60_000,
    });
    expect(r.status).toBe(200);
    const e = JSON.parse(r.text) as EchoBody;
    expect(e.bodyLength).toBe(n);
    expect(e.bodySha256).toBe(deterministicSha256(n, 3));
  }, 120_000);

  it('a chunked download (origin sends no Content-Length) passes through intact', async () => {
    const n = 20 * MB + 7;
    const r = await requestHashed(`${lb.url}/bytes/${n}?seed=5&chunked=1`, { timeoutMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.complete).toBe(true);
    expect(r.length).toBe(n);
    expect(r.sha256).toBe(deterministicSha256(n, 5));
  }, 120_000);
});

describe('connection reuse after an interrupted body', () => {
  it('a client that leaves in the middle of a 50 MB download: upstream cancelled, later responses not corrupted', async () => {
    const closed: string[] = [];
    const source = await startOrigin((req, res) => {
      const m = /^\/bytes\/(\d+)\?seed=(\d+)$/.exec(req.url ?? '');
      const n = Number(m?.[1] ?? 0);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      const s = deterministicStream(n, Number(m?.[2] ?? 1));
      s.pipe(res);
      res.on('close', () => {
        if (!res.writableFinished) closed.push(req.url ?? '');
        s.destroy();
      });
    });
    const lb1 = await startCorelb(corelbConfig({ workers: 1, pools: { source: [source.url] } }));
    let got = 0;
    const big = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${lb1.url}/bytes/${50 * MB}?seed=21`, { agent: false }, (res) => {
        res.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= MB) {
            req.destroy();
            resolve(got);
          }
        });
      });
      req.on('error', (e) => (got >= MB ? undefined : reject(e)));
    });
    expect(big).toBeLessThan(50 * MB);
    await eventually(() => closed.includes(`/bytes/${50 * MB}?seed=21`), 10_000, 'the origin to see the download cancelled');
    for (let i = 0; i < 10; i++) {
      const r = await requestHashed(`${lb1.url}/bytes/${1000 + i}?seed=${30 + i}`, { timeoutMs: 30_000 });
      expect(r.status).toBe(200);
      expect(r.length).toBe(1000 + i);
      expect(r.sha256).toBe(deterministicSha256(1000 + i, 30 + i));
    }
  }, 120_000);

  it('an origin that answers before reading the upload: the client gets that answer', async () => {
    const early = await startOrigin((_req, res) => {
      res.writeHead(401, { 'content-type': 'text/plain', 'content-length': 6 });
      res.end('denied');
    });
    const lb2 = await startCorelb(corelbConfig({ workers: 1, pools: { early: [early.url] } }));
    const body = Buffer.alloc(256 * 1024, 1);
    const r = await request(`${lb2.url}/upload`, { method: 'POST', body, headers: { 'content-length': body.length } });
    expect(r.status).toBe(401);
    expect(r.text).toBe('denied');
    const again = await request(`${lb2.url}/upload`, { method: 'POST', body: 'small' });
    expect(again.status).toBe(401);
  }, 60_000);
});

describe('an origin that dies in the middle of the body', () => {
  const cases = [
    { name: 'Content-Length 1 000 000, 500 000 sent, then the socket is destroyed', path: '/cut/content-length', full: 1_000_000 },
    { name: 'chunked, 3 chunks sent, no last chunk, then the socket is destroyed', path: '/cut/chunked', full: Infinity },
  ];
  it.each(cases)('$name: the client sees a broken response, never a complete one', async ({ path, full }) => {
    const r = await request(`${lb.url}${path}`, { timeoutMs: 40_000 }).catch((e: Error) => e);
    if (r instanceof Error) return expect(r.message).not.toMatch(/no complete response within/); // connection error: broken, fine
    if (r.status === 200) {
      expect(r.complete, `got ${r.body.length} bytes in a response that looks complete`).toBe(false);
      expect(r.body.length).toBeLessThan(full);
    } else {
      // the head had not been forwarded yet: an error status is acceptable
      expect(r.status).toBe(502);
    }
    const g = await request(`${lb.url}/cut/ok`);
    expect(g.text).toBe('ok');
  }, 60_000);
});
