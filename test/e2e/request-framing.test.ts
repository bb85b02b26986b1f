// The front door's framing, byte for byte: every request whose body framing corelb refuses is
// answered once and its connection closed, with a complete second request sent in the same
// write that must never reach a backend; what the front server (uWebSockets.js) does by itself
// with malformed requests, pinned so that an upgrade that changes it fails here; and keep-alive
// after Connection fields.
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb, type Corelb } from '../helpers/corelb.js';
import { eventually, startRawHttpOrigin, type RawExchange } from '../helpers/origins.js';
import { connect, header, headerValues, readResponse, SocketReader, type RawResponse } from '../helpers/raw.js';
import type net from 'node:net';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;
/** How long silence counts as "the front server said nothing" (its own timeout is ~10 s). */
const SILENCE_MS = 1000;
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

let lb: Corelb;
let backend: Awaited<ReturnType<typeof startRawHttpOrigin>>;

beforeAll(async () => {
  backend = await startRawHttpOrigin(({ socket }) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  lb = await startCorelb(corelbConfig({ workers: 1, pools: { web: [backend.url] } }));
}, T);

afterAll(stopEverything);

interface Outcome {
  responses: RawResponse[];
  /** The proxy closed the connection within the wait. */
  closed: boolean;
  bytes: number;
}

/** Every response in `bytes`, read as a client would. */
async function parseResponses(bytes: Buffer): Promise<RawResponse[]> {
  const stream = new PassThrough();
  const reader = new SocketReader(stream as unknown as net.Socket);
  stream.end(bytes);
  const out: RawResponse[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await readResponse(reader);
    if (r === null) break;
    out.push(r);
    if (reader.isEnded) break;
  }
  return out;
}

/** Sends `wire` in one write on a new connection; collects what comes back until the proxy closes, or `waitMs`. */
async function exchange(wire: string | Buffer, waitMs = 3000): Promise<Outcome> {
  const socket = await connect(lb.port);
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(typeof wire === 'string' ? Buffer.from(wire, 'latin1') : wire);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended.then(() => (closed = true)), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
  clearTimeout(timer);
  socket.destroy();
  const bytes = Buffer.concat(chunks);
  return { responses: await parseResponses(bytes), closed, bytes: bytes.length };
}

/** Requests the backend received since `from`, by path. */
function forwardedSince(from: number): RawExchange[] {
  return backend.requests.slice(from);
}

/** Sends `wire` alone on a new connection and reads one response (null: none came). */
async function oneResponse(wire: string): Promise<RawResponse | null> {
  const socket = await connect(lb.port);
  socket.on('error', () => undefined);
  try {
    socket.write(Buffer.from(wire, 'latin1'));
    return await readResponse(new SocketReader(socket));
  } finally {
    socket.destroy();
  }
}

/** After a refusal the proxy still serves, and its backend gets that request alone. */
async function stillServes(from: number): Promise<void> {
  const r = await oneResponse('GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  expect(r?.status).toBe(200);
  expect(forwardedSince(from).map((x) => x.req.target)).toEqual(['/after']);
}

describe('refused framing: one answer, connection closed, nothing after it forwarded', () => {
  const post = (fields: string, body = 'abc') => `POST /refused HTTP/1.1\r\nHost: x\r\n${fields}\r\n${body}`;
  const rows: { name: string; wire: string; status: number }[] = [
    { name: 'two different Content-Length values', wire: post('Content-Length: 3\r\nContent-Length: 5\r\n'), status: 400 },
    { name: 'Content-Length with a sign', wire: post('Content-Length: +3\r\n'), status: 400 },
    { name: 'negative Content-Length', wire: post('Content-Length: -1\r\n', ''), status: 400 },
    { name: 'Content-Length with a space inside', wire: post('Content-Length: 3 3\r\n'), status: 400 },
    { name: 'Content-Length with letters', wire: post('Content-Length: 3a\r\n'), status: 400 },
    { name: 'Content-Length in hex', wire: post('Content-Length: 0x3\r\n'), status: 400 },
    { name: 'Content-Length of 16 digits', wire: post('Content-Length: 1000000000000000\r\n'), status: 400 },
    { name: 'Content-Length empty', wire: post('Content-Length: \r\n', ''), status: 400 },
    { name: 'Content-Length with a non-ASCII byte inside', wire: post('Content-Length: 3\xa03\r\n'), status: 400 },
    { name: 'Content-Length as a list', wire: post('Content-Length: 3, 3\r\n'), status: 400 },
    { name: 'Content-Length then Transfer-Encoding', wire: post('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 400 },
    { name: 'Transfer-Encoding then Content-Length', wire: post('Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 400 },
    { name: 'Transfer-Encoding: gzip', wire: post('Transfer-Encoding: gzip\r\n'), status: 501 },
    { name: 'Transfer-Encoding: identity', wire: post('Transfer-Encoding: identity\r\n'), status: 501 },
    { name: 'Transfer-Encoding: chunked, gzip', wire: post('Transfer-Encoding: chunked, gzip\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding: gzip, chunked', wire: post('Transfer-Encoding: gzip, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding: chunked, chunked', wire: post('Transfer-Encoding: chunked, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding: xchunked', wire: post('Transfer-Encoding: xchunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding: chunk', wire: post('Transfer-Encoding: chunk\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding with a non-ASCII byte inside', wire: post('Transfer-Encoding: chun\xa0ked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding with a space inside', wire: post('Transfer-Encoding: chun ked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 501 },
    { name: 'Transfer-Encoding empty', wire: post('Transfer-Encoding: \r\n', '0\r\n\r\n'), status: 501 },
    { name: 'two Transfer-Encoding: chunked lines', wire: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 400 },
    { name: 'Transfer-Encoding: chunked and a second coding line', wire: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n', '3\r\nabc\r\n0\r\n\r\n'), status: 400 },
    { name: 'GET with Transfer-Encoding: gzip', wire: 'GET /refused HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', status: 501 },
  ];
  it.each(rows)('$name: $status', async ({ wire, status }) => {
    const from = backend.requests.length;
    const r = await exchange(wire + SMUGGLED);
    expect(r.responses.map((x) => x.status), 'exactly one answer, with this status').toEqual([status]);
    expect(r.closed, 'the connection is closed after the answer').toBe(true);
    expect(header(r.responses[0]!, 'connection')?.toLowerCase()).toBe('close');
    expect(forwardedSince(from), 'nothing reaches the backend').toEqual([]);
    await stillServes(from);
  }, T);

  it('the refusal is logged with its code and reason', async () => {
    const from = lb.logs().length;
    await exchange(post('Transfer-Encoding: gzip\r\n'));
    await eventually(() => lb.logs().slice(from).some((l) => l.code === 'CLB_ERR_UNKNOWN_CODING'), 5000, 'the refusal logged');
    const line = lb.logs().slice(from).find((l) => l.code === 'CLB_ERR_UNKNOWN_CODING')!;
    expect(line.msg).toBe('a transfer coding other than chunked');
    expect(line.status).toBe(501);
  }, T);
});

describe('accepted framing: one canonical framing line forwarded', () => {
  const forwardOne = async (wire: string): Promise<RawExchange> => {
    const from = backend.requests.length;
    const r = await oneResponse(wire);
    expect(r?.status).toBe(200);
    const got = forwardedSince(from);
    expect(got.map((x) => x.req.target)).toEqual(['/ok']);
    return got[0]!;
  };
  it('equal duplicate Content-Length lines are forwarded as one', async () => {
    const x = await forwardOne('POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc');
    expect(headerValues(x.req, 'content-length')).toEqual(['3']);
    expect(headerValues(x.req, 'transfer-encoding')).toEqual([]);
    expect(x.req.body.toString()).toBe('abc');
  }, T);
  it('Content-Length with leading zeros is forwarded as its number', async () => {
    const x = await forwardOne('POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc');
    expect(headerValues(x.req, 'content-length')).toEqual(['3']);
  }, T);
  it('Content-Length with HTAB around it (optional whitespace)', async () => {
    const x = await forwardOne('POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length:\t3\t\r\n\r\nabc');
    expect(headerValues(x.req, 'content-length')).toEqual(['3']);
    expect(x.req.body.toString()).toBe('abc');
  }, T);
  it('Transfer-Encoding: CHUNKED (any case) is forwarded as one chunked framing', async () => {
    const x = await forwardOne('POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(headerValues(x.req, 'transfer-encoding')).toEqual(['chunked']);
    expect(headerValues(x.req, 'content-length')).toEqual([]);
    expect(x.req.body.toString()).toBe('abc');
  }, T);
  it('a Connection field naming Content-Length does not drop the framing', async () => {
    const x = await forwardOne('POST /ok HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\nabc');
    expect(headerValues(x.req, 'content-length')).toEqual(['3']);
    expect(x.req.body.toString()).toBe('abc');
  }, T);
});

// What uWebSockets.js (as pinned in package.json) does by itself before corelb's handler runs,
// or instead of it. Each row asserts today's behaviour; above all that nothing reaches a backend.
// See the README: "Known limits of the front server".
describe('the front server by itself (pinned)', () => {
  const rows: { name: string; wire: string; outcome: 505 | 400 | 'silence' }[] = [
    { name: 'HTTP/1.0 request', wire: 'GET /x HTTP/1.0\r\nHost: x\r\n\r\n', outcome: 505 },
    { name: 'absolute-form target', wire: 'GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n', outcome: 505 },
    { name: 'OPTIONS *', wire: 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', outcome: 505 },
    { name: 'bare LF line ends', wire: 'GET /x HTTP/1.1\nHost: x\n\n', outcome: 505 },
    { name: 'a leading CRLF', wire: '\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n', outcome: 505 },
    { name: 'a garbage request line', wire: 'GARBAGE\r\n\r\n', outcome: 505 },
    { name: 'a space inside the request target', wire: 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', outcome: 505 },
    { name: 'an invalid chunk size (zz) in the request body', wire: 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', outcome: 400 },
    { name: 'Content-Length and Transfer-Encoding (uWS answers before corelb sees it)', wire: 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n', outcome: 400 },
    { name: 'GET without Host', wire: 'GET /x HTTP/1.1\r\n\r\n', outcome: 'silence' },
    { name: 'HEAD without Host', wire: 'HEAD /x HTTP/1.1\r\n\r\n', outcome: 'silence' },
    { name: 'a NUL in a field value', wire: 'GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', outcome: 'silence' },
    { name: 'a bare CR in a field value', wire: 'GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', outcome: 'silence' },
    { name: 'an obs-fold line', wire: 'GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', outcome: 'silence' },
    { name: 'a space before the colon', wire: 'GET /x HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n', outcome: 'silence' },
    { name: "'_' in a field name", wire: 'GET /x HTTP/1.1\r\nHost: x\r\nX_A: a\r\n\r\n', outcome: 'silence' },
    { name: 'a non-token byte in a field name', wire: 'GET /x HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n', outcome: 'silence' },
    { name: 'a header line without a colon', wire: 'GET /x HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', outcome: 'silence' },
    { name: 'a VT byte before the Transfer-Encoding value', wire: 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', outcome: 'silence' },
    { name: '120 header lines', wire: `GET /x HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, outcome: 'silence' },
    { name: 'a chunked body with a trailer field (the trailer is read as a request line)', wire: 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n', outcome: 505 },
  ];
  it.each(rows)('$name: $outcome, nothing forwarded', async ({ wire, outcome }) => {
    const from = backend.requests.length;
    const r = await exchange(wire + SMUGGLED, outcome === 'silence' ? SILENCE_MS : 3000);
    if (outcome === 'silence') {
      expect(r.bytes, 'no byte answered within 1 s').toBe(0);
      expect(r.closed, 'the connection is left open (until the front server times it out)').toBe(false);
    } else {
      expect(r.responses.map((x) => x.status)).toEqual([outcome]);
      expect(r.closed).toBe(true);
    }
    if (outcome === 505 && wire.includes('X-T: 1')) {
      // the chunked body itself ends before the trailer: that request reached the backend
      expect(forwardedSince(from).map((x) => x.req.target)).not.toContain('/smuggled');
    } else if (outcome === 400 && wire.includes('zz')) {
      // corelb streams bodies: the head may have gone out before uWS found the bad chunk line;
      // the backend connection is then cut, and no complete request reaches the backend
      await sleep(200);
      expect(forwardedSince(from).filter((x) => x.req.complete)).toEqual([]);
    } else {
      expect(forwardedSince(from), 'nothing reaches the backend').toEqual([]);
    }
  }, T);

  // uWS strips bytes below 0x21 and from 0x80 around a field value before corelb sees it (its
  // `char` is signed): corelb cannot tell `chunked\xa0` from `chunked`. What it forwards is the
  // framing uWS read, one canonical line of it; the README lists this among the front's limits.
  it.each([
    ['Transfer-Encoding: chunked\xa0', 'POST /nbsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'transfer-encoding', 'chunked'],
    ['Transfer-Encoding: \xa0chunked', 'POST /nbsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \xa0chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'transfer-encoding', 'chunked'],
    ['Content-Length: 3\xa0', 'POST /nbsp HTTP/1.1\r\nHost: x\r\nContent-Length: 3\xa0\r\n\r\nabc', 'content-length', '3'],
  ])('%s: stripped by uWS, forwarded with one canonical framing line', async (_name, wire, field, value) => {
    const from = backend.requests.length;
    const r = await oneResponse(wire);
    expect(r?.status).toBe(200);
    const got = forwardedSince(from);
    expect(got.map((x) => x.req.target)).toEqual(['/nbsp']);
    expect(headerValues(got[0]!.req, field)).toEqual([value]);
    expect(headerValues(got[0]!.req, field === 'content-length' ? 'transfer-encoding' : 'content-length')).toEqual([]);
    expect(got[0]!.req.body.toString()).toBe('abc');
  }, T);

  // uWS reads a chunk-size line leniently: every byte above 0x20 up to the LF is taken as a hex
  // digit (';' counts 11, 'g' 16), so chunk extensions and stray bytes change the size it reads.
  // corelb sees only the de-chunked bytes and re-chunks them towards the backend: one canonical
  // framing, the body as uWS read it. Pinned here; the README says to keep chunk extensions away.
  it('a chunk size line with an extension (3;a=b): uWS reads a larger size and waits for more body', async () => {
    const from = backend.requests.length;
    const r = await exchange('POST /ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n', SILENCE_MS);
    expect(r.bytes, 'no answer: the body has not ended for uWS').toBe(0);
    expect(forwardedSince(from), 'no complete request forwarded').toEqual([]);
  }, T);

  // corelb's answers are never ready inside the handler (they come from a backend), so HTTP
  // pipelining ends the connection, the first request's answer with it
  it('a request pipelined behind one whose answer is not ready: the connection is closed, no answer', async () => {
    const from = backend.requests.length;
    const r = await exchange('GET /first HTTP/1.1\r\nHost: x\r\n\r\n' + SMUGGLED);
    expect(r.responses).toEqual([]);
    expect(r.closed).toBe(true);
    await sleep(200);
    expect(forwardedSince(from).map((x) => x.req.target)).not.toContain('/smuggled');
  }, T);

  it('a client that half-closes right after its request gets no answer', async () => {
    const from = backend.requests.length;
    const socket = await connect(lb.port);
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.end('GET /half HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(Buffer.concat(chunks).length).toBe(0);
    expect(forwardedSince(from).length).toBeLessThanOrEqual(1);
  }, T);
});

describe('keep-alive and Connection', () => {
  /** Two requests one after the other on one connection; the answers and whether it stayed open. */
  async function twoOnOneConnection(first: string, firstMethod = 'GET'): Promise<{ a: RawResponse | null; b: RawResponse | null }> {
    const socket = await connect(lb.port);
    socket.on('error', () => undefined);
    const reader = new SocketReader(socket);
    try {
      socket.write(first);
      const a = await readResponse(reader, firstMethod);
      if (socket.destroyed || reader.isEnded) return { a, b: null };
      socket.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
      const b = await readResponse(reader).catch(() => null);
      return { a, b };
    } finally {
      socket.destroy();
    }
  }

  it('Connection naming a field the request carries: the field is dropped, the connection stays open', async () => {
    const from = backend.requests.length;
    const { a, b } = await twoOnOneConnection('GET /first HTTP/1.1\r\nHost: x\r\nConnection: x-hop-by-hop\r\nX-Hop-By-Hop: 1\r\n\r\n');
    expect(a?.status).toBe(200);
    expect(header(a!, 'connection')).toBeUndefined();
    expect(b?.status, 'a second request on the same connection is answered').toBe(200);
    const got = forwardedSince(from);
    expect(got.map((x) => x.req.target)).toEqual(['/first', '/second']);
    expect(headerValues(got[0]!.req, 'x-hop-by-hop')).toEqual([]);
  }, T);

  it('a HEAD answered with the backend\'s Content-Length keeps the connection for the next request', async () => {
    const { a, b } = await twoOnOneConnection('HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n', 'HEAD');
    expect(a?.status).toBe(200);
    expect(header(a!, 'content-length')).toBe('2');
    expect(b?.status, 'the next request on that connection is answered').toBe(200);
  }, T);

  it.each(['TE', 'keep-alive', 'upgrade, x-a, x-bc'])('Connection: %s keeps the connection open', async (value) => {
    const { a, b } = await twoOnOneConnection(`GET /first HTTP/1.1\r\nHost: x\r\nConnection: ${value}\r\n\r\n`);
    expect(a?.status).toBe(200);
    expect(b?.status).toBe(200);
  }, T);

  it('Connection: close is echoed in the answer, then the connection is closed', async () => {
    const r = await exchange('GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(r.responses.map((x) => x.status)).toEqual([200]);
    expect(header(r.responses[0]!, 'connection')?.toLowerCase()).toBe('close');
    expect(r.closed).toBe(true);
  }, T);

  it('Connection: close on an error answer (404) is echoed too', async () => {
    const lb404 = await startCorelb(corelbConfig({ workers: 1, pools: { web: [backend.url] }, routes: [{ path_prefix: '/api', pool: 'web' }] }));
    const socket = await connect(lb404.port);
    const reader = new SocketReader(socket);
    socket.write('GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const r = await readResponse(reader);
    socket.destroy();
    expect(r?.status).toBe(404);
    expect(header(r!, 'connection')?.toLowerCase()).toBe('close');
  }, T);

  // uWS takes a first Connection field of 5 bytes for `close` (it compares the length only): it
  // ends the connection after the answer whatever the 5 bytes say. corelb cannot keep such a
  // connection open, so its answer says so. Pinned: a fixed uWS makes this test fail.
  it('a first Connection field of 5 bytes (x-hop): the answer says Connection: close and the connection ends', async () => {
    const from = backend.requests.length;
    const r = await exchange('GET /five HTTP/1.1\r\nHost: x\r\nConnection: x-hop\r\nx-hop: 1\r\n\r\n');
    expect(r.responses.map((x) => x.status)).toEqual([200]);
    expect(header(r.responses[0]!, 'connection')?.toLowerCase()).toBe('close');
    expect(r.closed).toBe(true);
    const got = forwardedSince(from);
    expect(headerValues(got[0]!.req, 'x-hop')).toEqual([]);
  }, T);
});
