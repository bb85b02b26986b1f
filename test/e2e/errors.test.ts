// Every failure has a status, a short plain-text body and one log line with reqId and code:
// 502 refused, 503 at max connections, 504 response timeout, 413 body too large, 400 malformed,
// 404 no route; and a client that goes away cancels its upstream request.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Readable } from 'node:stream';
import { corelbConfig, startCorelb, type ConfigSpec, type Corelb } from '../helpers/corelb.js';
import { echoOrigin, eventually, startOrigin, startRawHttpOrigin, type EchoBody, type Origin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { request, type Reply } from '../helpers/http.js';
import { SocketReader, connect, rawRequest, readResponse } from '../helpers/raw.js';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;

afterEach(stopEverything);
afterAll(stopEverything);

function start(spec: Partial<ConfigSpec> & Pick<ConfigSpec, 'pools'>): Promise<Corelb> {
  return startCorelb(corelbConfig({ workers: 2, ...spec }));
}

/** Status, a short plain-text body, and exactly one log line with that code and a reqId. */
async function expectError(lb: Corelb, r: Reply, status: number, code: string): Promise<void> {
  expect(r.status).toBe(status);
  expect(r.headers['content-type'] ?? '(none)').toMatch(/^text\/plain/);
  // a refusal answered inside uWS's parse is padded with spaces past its cork buffer (see
  // src/front/refusal.ts): the text itself is short
  const text = r.text.replace(/ +\n?$/, '');
  expect(text.length).toBeGreaterThan(0);
  expect(text.length).toBeLessThan(512);
  const line = await lb.waitForLog((l) => l.code === code, 10_000);
  expect(typeof line.reqId, JSON.stringify(line)).toBe('string');
  expect((line.reqId as string).length).toBeGreaterThan(0);
  // stop the proxy so that every log line it will ever write is in, then count
  const exit = await lb.stop('SIGTERM');
  expect(exit.killedAfterTimeout).toBe(false);
  const lines = lb.logs().filter((l) => l.code === code);
  expect(lines.length, JSON.stringify(lines)).toBe(1);
}

/** An origin that holds every request until released. */
async function heldOrigin(): Promise<Origin & { release(): void }> {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  const o = await startOrigin(async (req, res) => {
    for await (const _ of req) void _;
    await released;
    if (!res.destroyed) res.end('late answer');
  });
  return Object.assign(o, { release });
}

describe('upstream errors', () => {
  it('502 when the backend refuses the connection (CLB_ERR_CONNECT)', async () => {
    const dead = await freePort();
    const lb = await start({ pools: { web: [`http://127.0.0.1:${dead}`] } });
    const r = await request(`${lb.url}/refused`);
    await expectError(lb, r, 502, 'CLB_ERR_CONNECT');
  }, T);

  it('503 when the only backend stays at max_connections_per_backend for timeouts.queue (CLB_ERR_QUEUE_TIMEOUT)', async () => {
    const origin = await heldOrigin();
    const lb = await start({
      workers: 1,
      timeouts: { connect: '2s', response: '30s', idle: '60s', queue: '400ms' },
      limits: { max_body: '10mb', max_connections_per_backend: 1 },
      pools: { web: [origin.url] },
    });
    const first = request(`${lb.url}/slow`, { timeoutMs: 40_000 });
    await origin.waitForRequests(1);
    const waitedFrom = performance.now();
    const second = await request(`${lb.url}/second`);
    expect(performance.now() - waitedFrom).toBeGreaterThanOrEqual(340); // waited the queue time (50 ms clock)
    origin.release();
    const firstReply = await first;
    expect(firstReply.status).toBe(200);
    expect(firstReply.text).toBe('late answer');
    expect(origin.requests.map((s) => s.url)).toEqual(['/slow']);
    await expectError(lb, second, 503, 'CLB_ERR_QUEUE_TIMEOUT');
  }, T);

  it('a request queued at max_connections_per_backend is sent as soon as a slot frees', async () => {
    const origin = await heldOrigin();
    const lb = await start({ workers: 1, limits: { max_body: '10mb', max_connections_per_backend: 1 }, pools: { web: [origin.url] } });
    const first = request(`${lb.url}/slow`, { timeoutMs: 40_000 });
    await origin.waitForRequests(1);
    const second = request(`${lb.url}/queued`, { timeoutMs: 40_000 });
    await sleep(200); // well inside the default 1s queue time
    expect(origin.requests.map((x) => x.url)).toEqual(['/slow']);
    origin.release();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(origin.requests.map((x) => x.url)).toEqual(['/slow', '/queued']);
  }, T);

  it('a queued request sent on a kept-alive connection still gets timeouts.response (504, not a hang)', async () => {
    const origin = await startOrigin((req, res) => {
      if (req.url === '/first') setTimeout(() => res.end('first'), 300);
      // /second is never answered
    });
    const lb = await start({
      workers: 1,
      timeouts: { connect: '2s', response: '800ms', idle: '60s', queue: '5s' },
      limits: { max_body: '10mb', max_connections_per_backend: 1 },
      pools: { web: [origin.url] },
    });
    const first = request(`${lb.url}/first`, { timeoutMs: 10_000 });
    await origin.waitForRequests(1);
    const from = performance.now();
    const second = await request(`${lb.url}/second`, { timeoutMs: 10_000 });
    expect((await first).status).toBe(200);
    expect(second.status).toBe(504);
    expect(performance.now() - from).toBeLessThan(3000);
    expect(origin.connections(), 'the queued request reused the kept-alive connection').toBe(1);
  }, T);

  it('503 at once (no queue wait) when no backend is available at all (CLB_ERR_NO_BACKEND)', async () => {
    const origin = await startOrigin((_req, res) => res.end('ok'));
    const lb = await start({
      workers: 1,
      limits: { max_body: '10mb', max_connections_per_backend: 1 },
      pools: { web: { backends: [origin.url], health: { path: '/healthz', interval: '100ms', timeout: '100ms', rise: 1, fall: 1, expect: 404 } } },
    });
    await lb.waitForLog((l) => l.msg === 'backend state' && l.to === 'down', 10_000);
    const from = performance.now();
    const r = await request(`${lb.url}/none`);
    expect(performance.now() - from).toBeLessThan(300);
    await expectError(lb, r, 503, 'CLB_ERR_NO_BACKEND');
  }, T);

  it('503: max_connections_per_backend counts across workers (2 workers, 8 more requests on new connections)', async () => {
    // Connections spread over the workers (SO_REUSEPORT). A per-worker count would let some of
    // these through; a correct shared count answers every one with 503.
    const origin = await heldOrigin();
    const lb = await start({
      workers: 2,
      timeouts: { connect: '2s', response: '30s', idle: '60s', queue: '100ms' },
      limits: { max_body: '10mb', max_connections_per_backend: 1 },
      pools: { web: [origin.url] },
    });
    const first = request(`${lb.url}/slow`, { timeoutMs: 40_000 });
    await origin.waitForRequests(1);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await request(`${lb.url}/more/${i}`)).status);
    origin.release();
    expect((await first).status).toBe(200);
    expect(statuses).toEqual(Array(8).fill(503));
    expect(origin.requests.map((x) => x.url)).toEqual(['/slow']);
  }, T);

  it('504 when the origin sends no response headers within timeouts.response (CLB_ERR_RESPONSE_TIMEOUT)', async () => {
    const origin = await startOrigin(() => {
      /* never answers */
    });
    const lb = await start({ timeouts: { connect: '2s', response: '300ms', idle: '60s' }, pools: { web: [origin.url] } });
    const r = await request(`${lb.url}/never`, { timeoutMs: 30_000 });
    // the proxy gives up on the upstream request: the origin sees it closed
    await eventually(() => origin.requests[0]?.closedEarly === true, 10_000, 'the origin to see its request closed');
    await expectError(lb, r, 504, 'CLB_ERR_RESPONSE_TIMEOUT');
  }, T);

  it('a backend silent mid-body for timeouts.response: the client gets a cut response, the backend connection is closed', async () => {
    let backendClosed = false;
    const origin = await startRawHttpOrigin(async ({ socket }) => {
      socket.on('close', () => (backendClosed = true));
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(10));
      await sleep(20_000); // then silence
      return 'stop';
    });
    const lb = await start({ timeouts: { connect: '2s', response: '500ms', idle: '60s' }, pools: { web: [origin.url] } });
    const r = await request(`${lb.url}/stalls`, { timeoutMs: 15_000 }).catch((e: Error) => e);
    if (!(r instanceof Error)) expect(r.complete, 'a cut response must not look complete').toBe(false);
    const line = await lb.waitForLog((l) => l.code === 'CLB_ERR_RESPONSE_TIMEOUT', 10_000);
    expect(line.midResponse).toBe(true);
    expect(typeof line.reqId).toBe('string');
    await eventually(() => backendClosed, 10_000, 'the backend connection to be closed');
  }, T);

  it('504 when the backend does not complete the TCP handshake within timeouts.connect (CLB_ERR_CONNECT_TIMEOUT)', async () => {
    // A listener that never accepts, with its accept queue filled: the kernel drops further SYNs,
    // so a connect neither succeeds nor fails. Node always accepts, hence the tiny python listener.
    const listener = spawn('python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        listener.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        listener.once('error', reject);
      });
      const fillers: net.Socket[] = [];
      for (let k = 0; k < 4; k++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
      await sleep(200);
      const lb = await start({ timeouts: { connect: '300ms', response: '30s', idle: '60s' }, pools: { web: [`http://127.0.0.1:${port}`] } });
      const r = await request(`${lb.url}/slow-connect`, { timeoutMs: 30_000 });
      await expectError(lb, r, 504, 'CLB_ERR_CONNECT_TIMEOUT');
      for (const f of fillers) f.destroy();
    } finally {
      listener.kill('SIGKILL');
    }
  }, T);
});

describe('accounting after a response that breaks mid-body', () => {
  it('a broken mid-body response frees its connection slot exactly once (503 still enforced after it)', async () => {
    let releaseHold!: () => void;
    const held = new Promise<void>((r) => {
      releaseHold = r;
    });
    const origin = await startRawHttpOrigin(async ({ req, socket }) => {
      if (req.target === '/break') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        await sleep(200);
        socket.write('zz\r\nnot a chunk\r\n');
        return 'stop';
      }
      if (req.target === '/hold') await held;
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const lb = await start({ workers: 1, limits: { max_body: '10mb', max_connections_per_backend: 1 }, pools: { web: [origin.url] } });
    const broken = await request(`${lb.url}/break`).catch((e: Error) => e);
    if (!(broken instanceof Error)) expect(broken.status === 200 && broken.complete).toBe(false);
    expect((await request(`${lb.url}/ok`)).text).toBe('ok');
    const hold = request(`${lb.url}/hold`, { timeoutMs: 30_000 });
    await eventually(() => origin.requests.some((x) => x.req.target === '/hold'), 10_000, 'the held request to reach the origin');
    const second = await request(`${lb.url}/second`);
    releaseHold();
    expect((await hold).text).toBe('ok');
    expect(second.status, 'the only backend slot was taken: a second request must get 503').toBe(503);
  }, T);
});

describe('request body limits', () => {
  it('413 when Content-Length is over max_body, before the origin is contacted', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ limits: { max_body: '1kb', max_connections_per_backend: 0 }, pools: { web: [origin.url] } });
    const r = await request(`${lb.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': 4096 },
      body: Buffer.alloc(4096, 1),
    });
    expect(origin.requests.length).toBe(0);
    await expectError(lb, r, 413, 'CLB_ERR_BODY_TOO_LARGE');
  }, T);

  it('413 when a chunked body grows past max_body while streaming', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ limits: { max_body: '1kb', max_connections_per_backend: 0 }, pools: { web: [origin.url] } });
    const parts = Array.from({ length: 8 }, () => Buffer.alloc(512, 2));
    const r = await request(`${lb.url}/upload-chunked`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.from(parts),
    });
    await expectError(lb, r, 413, 'CLB_ERR_BODY_TOO_LARGE');
    // if the origin saw the request, it must not have received the over-limit body as a complete one
    for (const s of origin.requests) expect(s.res.writableFinished, 'origin read a complete 4 KiB body and answered').toBe(false);
  }, T);

  it.each([
    { name: '413 over max_body', status: 413, code: 'CLB_ERR_BODY_TOO_LARGE', refused: false },
    { name: '502 from a refused backend', status: 502, code: 'CLB_ERR_CONNECT', refused: true },
  ])('$name while a 20 MB body is still being sent: the body is read, then the client reads the status, not a reset', async ({ status, code, refused }) => {
    const backend = refused ? `http://127.0.0.1:${await freePort()}` : (await echoOrigin('web')).url;
    const lb = await start({ limits: { max_body: refused ? '100mb' : '1mb', max_connections_per_backend: 0 }, pools: { web: [backend] } });
    for (const chunked of [false, true]) {
      const body = chunked ? Readable.from(Array.from({ length: 320 }, () => Buffer.alloc(64 * 1024, 5))) : Buffer.alloc(20 * 1024 * 1024, 5);
      const r = await request(`${lb.url}/upload`, { method: 'POST', body, timeoutMs: 30_000 });
      expect(r.status, chunked ? 'chunked body' : 'Content-Length body').toBe(status);
      expect(r.text).toMatch(new RegExp(`^${status} `));
    }
    await lb.stop('SIGTERM'); // every log line is in once it has exited
    expect(lb.logs().filter((l) => l.code === code)).toHaveLength(2);
  }, T);

  it('a client that stops sending its rejected body gets the 413 and a closed connection after the linger bound', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ limits: { max_body: '1kb', max_connections_per_backend: 0 }, pools: { web: [origin.url] } });
    const s = await connect(lb.port);
    const reader = new SocketReader(s);
    s.write('POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    s.write(Buffer.alloc(4096, 1)); // then nothing more
    const r = await readResponse(reader);
    expect(r?.status).toBe(413);
    await reader.readAll(); // the proxy closes the connection: this returns instead of hanging
    expect(reader.isEnded).toBe(true);
    expect(origin.requests.length).toBe(0);
  }, T);

  it('bodies under max_body pass (Content-Length and chunked)', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ limits: { max_body: '1kb', max_connections_per_backend: 0 }, pools: { web: [origin.url] } });
    const a = await request(`${lb.url}/small`, { method: 'POST', body: Buffer.alloc(900, 3) });
    expect(a.status).toBe(200);
    expect((JSON.parse(a.text) as EchoBody).bodyLength).toBe(900);
    const b = await request(`${lb.url}/small-chunked`, { method: 'POST', body: Readable.from([Buffer.alloc(450, 4), Buffer.alloc(450, 5)]) });
    expect(b.status).toBe(200);
    expect((JSON.parse(b.text) as EchoBody).bodyLength).toBe(900);
  }, T);
});

describe('bad requests', () => {
  // every malformed request, byte for byte: test/e2e/request-framing.test.ts
  it('501 from the proxy itself for Transfer-Encoding: gzip: plain-text body and one CLB_ERR_UNKNOWN_CODING log line', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ pools: { web: [origin.url] } });
    const r = await request(`${lb.url}/te`, { method: 'POST', headers: { 'transfer-encoding': 'gzip' }, body: 'abc' }).catch(
      (e: Error) => e,
    );
    if (r instanceof Error) throw new Error(`no response to a request with Transfer-Encoding: gzip: ${r.message}`);
    expect(origin.requests.length).toBe(0);
    await expectError(lb, r, 501, 'CLB_ERR_UNKNOWN_CODING');
  }, T);

  it('Content-Length together with Transfer-Encoding: rejected, or never forwarded with both', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ pools: { web: [origin.url] } });
    const wire = 'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
    const r = await rawRequest(lb.port, wire);
    expect(r, 'the proxy closed the connection without any response').not.toBeNull();
    if (r!.status >= 400 && r!.status < 500) {
      expect(origin.requests.length).toBe(0);
    } else {
      for (const s of origin.requests) {
        const both = s.headers['content-length'] !== undefined && s.headers['transfer-encoding'] !== undefined;
        expect(both, 'origin got a request with both Content-Length and Transfer-Encoding').toBe(false);
      }
    }
  }, T);
});

describe('routing', () => {
  it('404 when no route matches (CLB_ERR_NO_ROUTE)', async () => {
    const origin = await echoOrigin('web');
    const lb = await start({ pools: { web: [origin.url] }, routes: [{ path_prefix: '/api', pool: 'web' }] });
    const r = await request(`${lb.url}/elsewhere`);
    expect(origin.requests.length).toBe(0);
    await expectError(lb, r, 404, 'CLB_ERR_NO_ROUTE');
  }, T);
});

describe('client aborts', () => {
  it('a client that goes away while waiting for the response cancels the upstream request', async () => {
    const origin = await heldOrigin();
    const lb = await start({ pools: { web: [origin.url] } });
    const s = await connect(lb.port);
    s.on('error', () => undefined);
    s.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1:${lb.port}\r\n\r\n`);
    const [seen] = await origin.waitForRequests(1);
    s.destroy();
    await eventually(() => seen!.closedEarly, 10_000, 'the origin to see its request closed');
    origin.release();
    // and the proxy still serves
    const next = await request(`${lb.url}/after`);
    expect(next.status).toBe(200);
    expect(next.text).toBe('late answer');
  }, T);

  it('a client that goes away in the middle of its upload cancels the upstream request', async () => {
    let bodyCompleted = 0;
    const origin = await startOrigin(async (req, res) => {
      for await (const _ of req) void _;
      bodyCompleted++;
      res.end('got it all');
    });
    const lb = await start({ pools: { web: [origin.url] } });
    const s = await connect(lb.port);
    s.on('error', () => undefined);
    s.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n`);
    s.write(Buffer.alloc(1_000_000, 9));
    const [seen] = await origin.waitForRequests(1);
    s.destroy();
    await eventually(() => seen!.closedEarly, 10_000, 'the origin to see its request closed');
    expect(bodyCompleted, 'the origin must not see a complete body').toBe(0);
    // the proxy is alive and serves the next request
    const r = await rawRequest(lb.port, `POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi`);
    expect(r?.status).toBe(200);
    expect(r?.body.toString()).toBe('got it all');
  }, T);
});
