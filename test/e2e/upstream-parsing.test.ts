// The lean upstream client's parser, against hand-written origin responses: framings, 1xx,
// bodiless responses, keep-alive reuse, and every malformed response turning into a 502.
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb, type Corelb, type LogLine } from '../helpers/corelb.js';
import { eventually, startRawHttpOrigin, writeInPieces, type RawOrigin } from '../helpers/origins.js';
import { request, type Reply } from '../helpers/http.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;

type After = 'keep' | 'end' | 'destroy' | 'reset';
interface Wire {
  wire: string;
  after?: After;
  /** Write in pieces of this many bytes (default: one write). */
  pieces?: number;
}

/** Responses by request path; the raw origin looks the path up for every request it reads. */
const wires = new Map<string, Wire>();
wires.set('/good', { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' });
wires.set('/ka', { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Case: ka\r\n\r\nalive' });

async function respond(socket: net.Socket, w: Wire): Promise<void> {
  if (w.pieces) await writeInPieces(socket, w.wire, w.pieces);
  else if (w.wire.length > 0) socket.write(Buffer.from(w.wire, 'latin1'));
  switch (w.after ?? 'keep') {
    case 'keep':
      return;
    case 'end':
      socket.end();
      return;
    case 'destroy':
      socket.destroy();
      return;
    case 'reset':
      socket.resetAndDestroy();
      return;
  }
}

let origin: Awaited<ReturnType<typeof startRawHttpOrigin>>;
let lb: Corelb;

beforeAll(async () => {
  origin = await startRawHttpOrigin(async ({ req, socket }) => {
    const path = req.target.split('?')[0]!;
    const w = wires.get(path) ?? { wire: 'HTTP/1.1 599 Unknown Test Path\r\nContent-Length: 0\r\n\r\n' };
    await respond(socket, w);
    if (w.after && w.after !== 'keep') return 'stop';
  });
  lb = await startCorelb(
    corelbConfig({
      workers: 1,
      timeouts: { connect: '2s', response: '5s', idle: '60s' },
      pools: { raw: [origin.url] },
    }),
  );
}, T);

afterAll(stopEverything);

describe('valid upstream responses', () => {
  const cases: {
    name: string;
    method?: string;
    w: Wire;
    status: number;
    body: string;
    headers?: Record<string, string | undefined>;
  }[] = [
    {
      name: 'Content-Length body',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Case: cl\r\n\r\nhello world' },
      status: 200,
      body: 'hello world',
      headers: { 'x-case': 'cl' },
    },
    { name: 'Content-Length: 0', w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' }, status: 200, body: '' },
    {
      name: 'Content-Length body written 3 bytes at a time',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world', pieces: 3 },
      status: 200,
      body: 'hello world',
    },
    {
      name: 'chunked with extensions and trailers',
      w: {
        wire:
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
          '5;ext=1\r\nhello\r\n6;a="b";c\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n',
      },
      status: 200,
      body: 'hello world',
    },
    {
      name: 'chunked with upper-case hex sizes',
      w: { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n1F\r\n' + 'x'.repeat(31) + '\r\n0\r\n\r\n' },
      status: 200,
      body: '0123456789' + 'x'.repeat(31),
    },
    {
      name: 'chunked written 1 byte at a time',
      w: {
        wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n',
        pieces: 1,
      },
      status: 200,
      body: 'hello world',
    },
    {
      name: 'chunked with a mixed-case Transfer-Encoding value',
      w: { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' },
      status: 200,
      body: 'abc',
    },
    {
      name: 'close-delimited body',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the origin closes', after: 'end' },
      status: 200,
      body: 'until the origin closes',
    },
    {
      name: '100 Continue then a 404',
      w: { wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope', pieces: 7 },
      status: 404,
      body: 'nope',
    },
    {
      name: '103 Early Hints then a chunked 200, written 7 bytes at a time',
      w: { wire: 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', pieces: 7 },
      status: 200,
      body: 'hello',
    },
    {
      name: 'Content-Length with HTAB around its value',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length:\t42\t\r\n\r\n' + 'y'.repeat(42) },
      status: 200,
      body: 'y'.repeat(42),
    },
    {
      name: '100 Continue before the final response',
      w: { wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
      status: 200,
      body: 'ok',
    },
    {
      name: '103 Early Hints before the final response',
      w: {
        wire:
          'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n' +
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok',
      },
      status: 200,
      body: 'ok',
      headers: { 'x-final': 'yes', link: undefined },
    },
    {
      name: '100 then 103 then the final response, in pieces',
      w: {
        wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.js>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone',
        pieces: 7,
      },
      status: 201,
      body: 'done',
    },
    {
      name: 'HEAD: Content-Length without a body',
      method: 'HEAD',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Case: head\r\n\r\n' },
      status: 200,
      body: '',
      headers: { 'x-case': 'head', 'content-length': '1000' },
    },
    {
      name: '204 has no body',
      w: { wire: 'HTTP/1.1 204 No Content\r\nX-Case: 204\r\n\r\n' },
      status: 204,
      body: '',
      headers: { 'x-case': '204' },
    },
    {
      name: '304 has no body even with a Content-Length',
      w: { wire: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 100\r\n\r\n' },
      status: 304,
      body: '',
      headers: { etag: '"v1"' },
    },
    {
      name: 'empty reason phrase',
      w: { wire: 'HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok' },
      status: 200,
      body: 'ok',
    },
    {
      name: 'unusual status and reason',
      w: { wire: "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 3\r\n\r\ntea" },
      status: 418,
      body: 'tea',
    },
    {
      name: 'a 40 KB response head arriving in 1000-byte pieces',
      w: {
        wire:
          'HTTP/1.1 200 OK\r\n' +
          Array.from({ length: 400 }, (_, i) => `X-H-${i}: ${String(i).padStart(100, 'v')}\r\n`).join('') +
          'Content-Length: 2\r\n\r\nok',
        pieces: 1000,
      },
      status: 200,
      body: 'ok',
      headers: { 'x-h-0': '0'.padStart(100, 'v'), 'x-h-399': '399'.padStart(100, 'v') },
    },
    {
      name: 'header value whitespace is trimmed, not part of the value',
      w: { wire: 'HTTP/1.1 200 OK\r\nX-Pad:    padded  \r\nContent-Length: 2\r\n\r\nok' },
      status: 200,
      body: 'ok',
      headers: { 'x-pad': 'padded' },
    },
  ];

  it.each(cases)('$name', async ({ name, method, w, status, body, headers }) => {
    const path = `/ok/${name.replace(/[^a-z0-9]+/gi, '-')}`;
    wires.set(path, w);
    const r = await request(`${lb.url}${path}`, { method: method ?? 'GET' });
    expect(r.status).toBe(status);
    expect(r.text).toBe(body);
    expect(r.complete).toBe(true);
    for (const [k, v] of Object.entries(headers ?? {})) expect(r.headers[k]).toBe(v);
    // the next request through the same proxy and origin is served correctly
    const g = await request(`${lb.url}/good`);
    expect(g.status).toBe(200);
    expect(g.text).toBe('ok');
  }, T);

  it('keep-alive: the origin sees fewer connections than requests', async () => {
    const before = origin.connections();
    const n = 12;
    for (let i = 0; i < n; i++) {
      const r = await request(`${lb.url}/ka?i=${i}`);
      expect(r.status).toBe(200);
      expect(r.text).toBe('alive');
    }
    const used = origin.connections() - before;
    expect(used).toBeLessThan(n);
  }, T);

  it('an origin that closes its idle keep-alive connection right after a response: the next requests still succeed', async () => {
    // Content-Length framed, no "Connection: close", then the origin closes: the pooled
    // connection goes stale, and the proxy must not answer the next request with a 502
    wires.set('/then-close', { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbye!', after: 'end' });
    for (let i = 0; i < 20; i++) {
      const a = await request(`${lb.url}/then-close?i=${i}`);
      expect(a.status).toBe(200);
      expect(a.text).toBe('bye!');
      const b = await request(`${lb.url}/good?i=${i}`);
      expect(b.status, `request ${i} after a stale connection`).toBe(200);
      expect(b.text).toBe('ok');
    }
  }, T);

  it('keep-alive across framings: CL, chunked, 204, HEAD, 304, 1xx in turn on reused connections', async () => {
    const seq: [string, Wire, string, number, string][] = [
      ['/seq/cl', { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none' }, 'GET', 200, 'one'],
      ['/seq/chunked', { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n' }, 'GET', 200, 'two'],
      ['/seq/204', { wire: 'HTTP/1.1 204 No Content\r\n\r\n' }, 'GET', 204, ''],
      ['/seq/head', { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n' }, 'HEAD', 200, ''],
      ['/seq/304', { wire: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n' }, 'GET', 304, ''],
      ['/seq/1xx', { wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthree' }, 'GET', 200, 'three'],
    ];
    for (const [p, w] of seq) wires.set(p, w);
    const before = origin.connections();
    for (let round = 0; round < 3; round++) {
      for (const [p, , method, status, body] of seq) {
        const r = await request(`${lb.url}${p}`, { method });
        expect(r.status, `${method} ${p}`).toBe(status);
        expect(r.text, `${method} ${p}`).toBe(body);
      }
    }
    expect(origin.connections() - before).toBeLessThan(seq.length * 3);
  }, T);
});

describe('malformed upstream responses become 502', () => {
  const INVALID = ['CLB_ERR_INVALID_RESPONSE'];
  const CLOSED = ['CLB_ERR_RESET', 'CLB_ERR_INVALID_RESPONSE'];
  const cases: { name: string; w: Wire; codes: string[]; /** headers may already be out: a broken response is acceptable */ mayBreak?: boolean }[] = [
    {
      name: 'both Content-Length and Transfer-Encoding',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
      codes: INVALID,
    },
    { name: 'Content-Length: abc', w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nabc' }, codes: INVALID },
    { name: 'Content-Length: -1', w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nx' }, codes: INVALID },
    { name: 'Content-Length: +5', w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello' }, codes: INVALID },
    {
      name: 'two different Content-Length headers',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!' },
      codes: INVALID,
    },
    {
      name: 'a Content-Length list with different values',
      w: { wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!' },
      codes: INVALID,
    },
    { name: 'garbage status line', w: { wire: 'garbage\r\n\r\n' }, codes: INVALID },
    { name: 'misspelt protocol', w: { wire: 'HTPT/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' }, codes: INVALID },
    { name: 'non-numeric status', w: { wire: 'HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok' }, codes: INVALID },
    { name: 'two-digit status', w: { wire: 'HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok' }, codes: INVALID },
    { name: 'header line without a colon', w: { wire: 'HTTP/1.1 200 OK\r\nBadHeader\r\nContent-Length: 2\r\n\r\nok' }, codes: INVALID },
    {
      name: 'invalid chunk size',
      w: { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n' },
      codes: INVALID,
      mayBreak: true,
    },
    {
      name: 'chunk size overflowing 64 bits',
      w: { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n' },
      codes: INVALID,
      mayBreak: true,
    },
    {
      name: 'a chunk line with a bare ;',
      w: { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n' },
      codes: INVALID,
      mayBreak: true,
    },
    {
      name: 'a chunk size with a trailing space',
      w: { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n' },
      codes: INVALID,
      mayBreak: true,
    },
    { name: 'origin closes before any byte', w: { wire: '', after: 'destroy' }, codes: CLOSED },
    { name: 'origin resets (RST) before any byte', w: { wire: '', after: 'reset' }, codes: CLOSED },
    { name: 'origin closes in the middle of the headers', w: { wire: 'HTTP/1.1 200 OK\r\nContent-Len', after: 'end' }, codes: CLOSED },
  ];

  const count = (codes: string[]) => lb.logs().filter((l: LogLine) => typeof l.code === 'string' && codes.includes(l.code)).length;

  it.each(cases)('$name', async ({ name, w, codes, mayBreak }) => {
    const path = `/bad/${name.replace(/[^a-z0-9]+/gi, '-')}`;
    wires.set(path, w);
    const before = count(codes);
    const r: Pick<Reply, 'status' | 'text' | 'complete' | 'headers'> = await request(`${lb.url}${path}`).catch(() => ({
      status: -1,
      text: '',
      complete: false,
      headers: {},
    }));
    if (mayBreak && r.status !== 502) {
      // the proxy had already sent the head: the body must then be visibly broken
      expect(r.complete, `status ${r.status}: a response must not look complete`).toBe(false);
    } else {
      expect(r.status).toBe(502);
      expect(r.headers['content-type'] ?? '').toMatch(/^text\/plain/);
      expect(r.text.length).toBeGreaterThan(0);
      expect(r.text).not.toContain('hello');
      const line = await lb.waitForLog(() => count(codes) > before, 10_000);
      void line;
      const newLines = lb.logs().filter((l) => typeof l.code === 'string' && codes.includes(l.code)).slice(before);
      expect(newLines.some((l) => typeof l.reqId === 'string' && (l.reqId as string).length > 0)).toBe(true);
    }
    // after a bad response the proxy still serves the next request fine
    const g = await request(`${lb.url}/good`);
    expect(g.status).toBe(200);
    expect(g.text).toBe('ok');
  }, T);

  it('the connection of an invalid chunked response is closed by the proxy, never reused', async () => {
    wires.set('/bad-ext', { wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n' });
    expect((await request(`${lb.url}/good`)).status).toBe(200); // a kept-alive connection to reuse
    const r = await request(`${lb.url}/bad-ext`).catch(() => null);
    expect(r === null || !r.complete || r.status === 502).toBe(true);
    const bad = origin.requests.filter((x) => x.req.target === '/bad-ext').at(-1)!;
    await eventually(() => bad.socket.destroyed || bad.socket.readableEnded, 5000, 'the proxy to close that connection');
    for (let i = 0; i < 3; i++) expect((await request(`${lb.url}/good`)).status).toBe(200);
    const after = origin.requests.slice(origin.requests.indexOf(bad) + 1);
    expect(after.length).toBe(3);
    for (const x of after) expect(x.connection, 'a later request on the invalid response\'s connection').not.toBe(bad.connection);
  }, T);

  it('the proxy is still running after all of the above', async () => {
    expect(lb.proc.exitCode).toBeNull();
    const g = await request(`${lb.url}/good`);
    expect(g.text).toBe('ok');
  }, T);
});
