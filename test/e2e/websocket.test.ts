// End to end: WebSockets through the real CLI, with echo backends on corelb's own framing
// (test/helpers/ws-client.ts): 10,000 small messages and 1 MiB binary messages echoed, fragments
// joined, the subprotocol passed on and no extension agreed, close codes both ways, pings relayed
// both ways, the access lines, failover of a handshake, 101 answers that break the rules, the idle
// timeout, restart-only limits, a backend refusing the handshake (the client gets its 403), a backend killed
// mid-stream (1011), sticky and hash routing of the handshake, a client that reads nothing
// (memory stays bounded), wss over a TLS listener, an https backend, a reload leaving open WebSockets on their
// backend, a graceful stop closing them with 1001, and the WebSocket metrics.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeCa, makeLeaf } from '../helpers/certs.js';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb, toYaml, type Corelb, type LogLine } from '../helpers/corelb.js';
import { freePort } from '../helpers/ports.js';
import { metric, parseExposition, type Exposition } from '../helpers/prom.js';
import { sleep } from '../helpers/time.js';
import { closeAllWsBackends, startWsBackend, wsConnect, wsOpen, WsClient, type WsBackend } from '../helpers/ws-client.js';

const T = 60_000;

let a: WsBackend;
let b: WsBackend;
let refusing: WsBackend;
let lb: Corelb;

beforeAll(async () => {
  a = await startWsBackend('a');
  b = await startWsBackend('b');
  refusing = await startWsBackend('refusing', { refuse: 'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nx-why: token\r\ncontent-length: 5\r\n\r\nnope\n' });
  lb = await startCorelb(routingConfig(a, b, refusing));
}, T);

/** Two workers; pools echo (a), pair, sticky and hashed (a and b), and refusing when given. */
function routingConfig(a: WsBackend, b: WsBackend, refusing: WsBackend | null): Record<string, unknown> {
  const refuse = refusing === null ? [] : [{ path_prefix: '/refuse', pool: 'refusing' }];
  return corelbConfig({
    workers: 2,
    pools: {
      echo: [a.url],
      pair: [a.url, b.url],
      sticky: { backends: [a.url, b.url], sticky: { cookie: 'lb' } },
      hashed: { algorithm: 'consistent-hash', hash_key: 'query:room', backends: [a.url, b.url] },
      ...(refusing === null ? {} : { refusing: [refusing.url] }),
    },
    routes: [
      { path_prefix: '/pair', pool: 'pair' },
      { path_prefix: '/sticky', pool: 'sticky' },
      { path_prefix: '/hashed', pool: 'hashed' },
      ...refuse,
      { path_prefix: '/', pool: 'echo' },
    ],
  });
}

afterAll(async () => {
  await stopEverything();
  await closeAllWsBackends();
});

describe('WebSocket proxying', () => {
  it('echoes 10,000 small text messages in order', async () => {
    const c = await wsOpen(lb.port);
    for (let i = 0; i < 10_000; i++) c.send('m' + i);
    for (let i = 0; i < 10_000; i++) {
      const m = await c.next();
      expect(m.binary).toBe(false);
      if (m.data.toString() !== 'm' + i) expect(m.data.toString()).toBe('m' + i);
    }
    c.close(1000, 'bye');
    expect(await c.closed).toEqual({ code: 1000, reason: 'bye', framed: true });
  }, T);

  it('echoes 1 MiB binary messages, and a message sent in fragments comes back whole', async () => {
    const c = await wsOpen(lb.port);
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
    for (let k = 0; k < 8; k++) c.send(big);
    for (let k = 0; k < 8; k++) {
      const m = await c.next();
      expect(m.binary).toBe(true);
      expect(m.data.equals(big)).toBe(true);
    }
    c.sendFragmented(big.subarray(0, 100_000), 3000);
    const m = await c.next();
    expect(m.data.equals(big.subarray(0, 100_000))).toBe(true);
    c.close(1000);
    await c.closed;
  }, T);

  it('passes the subprotocol on, agrees no extension, and forwards the handshake fields', async () => {
    const before = a.handshakes.length;
    const c = await wsOpen(lb.port, { protocols: ['chat.v1', 'chat.v2'], headers: { 'x-token': 'abc' } });
    expect(c.protocol).toBe('chat.v2'); // the backend picks the last one offered
    const h = a.handshakes[before]!;
    expect(h['sec-websocket-protocol']).toBe('chat.v1, chat.v2');
    expect(h['sec-websocket-extensions']).toBeUndefined();
    expect(h['x-token']).toBe('abc');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    c.close(1000);
    await c.closed;
  }, T);

  it('passes close codes and reasons both ways, and logs no failure for a close handshake', async () => {
    const from = lb.logs().length;
    const before = a.closes.length;
    const c = await wsOpen(lb.port);
    c.close(4001, 'client says bye');
    expect(await c.closed).toEqual({ code: 4001, reason: 'client says bye', framed: true });
    await eventually(() => expect(a.closes.slice(before)).toContainEqual([4001, 'client says bye']));
    const d = await wsOpen(lb.port);
    d.send('close 4002 backend says bye');
    expect(await d.closed).toEqual({ code: 4002, reason: 'backend says bye', framed: true });
    // the backend then closes the TCP connection, as a server does at the end of a close handshake
    await sleep(300);
    expect(lb.logs().slice(from).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('WebSocket backend failed'))).toEqual([]);
  }, T);

  it("closes the client with 1011 and the backend with 1002 / 1007 when the backend's close frame is invalid (a code no frame may carry, a reason that is not UTF-8) or its text is not UTF-8", async () => {
    for (const [command, backendGets, why] of [
      ['closeraw 03e7', 1002, 'close code 999, which no close frame may carry'],
      ['closeraw 03ed', 1002, 'close code 1005, which no close frame may carry'],
      ['closeraw 03e8cebaeda080', 1007, 'close reason that is not UTF-8'],
      ['texthex 68cebaeda080', 1007, 'text message that is not UTF-8'],
    ] as const) {
      const from = lb.logs().length;
      const before = a.closes.length;
      const c = await wsOpen(lb.port);
      c.send(command);
      expect(await c.closed, command).toEqual({ code: 1011, reason: 'backend failed', framed: true });
      await eventually(() => expect(a.closes.slice(before)).toContainEqual([backendGets, why]));
      // the worker thread's log line reaches the test through the main thread and a pipe, and may
      // trail the close frames that came over TCP
      await eventually(() => expect(lb.logs().slice(from).map((l) => l.msg)).toContain('WebSocket backend broke the protocol: ' + why));
    }
    // 3000-4999 and IANA's 1012-1014 pass, from the backend
    for (const code of [1012, 3000, 3999]) {
      const c = await wsOpen(lb.port);
      c.send(`close ${code} fine`);
      expect(await c.closed).toEqual({ code, reason: 'fine', framed: true });
    }
  }, T);

  it("relays the backend's ping to the client and the client's pong back", async () => {
    const c = await wsOpen(lb.port);
    c.send('ping hello');
    const m = await c.next();
    expect(m.data.toString()).toBe('pong hello');
    expect(c.pings.map((p) => p.toString())).toEqual(['hello']);
    c.close(1000);
    await c.closed;
  }, T);

  it("relays the client's ping to the backend as a ping, and keeps the backend's pong to it from the client (uWS answered)", async () => {
    const c = await wsOpen(lb.port);
    const before = a.pings.length;
    c.ping('heartbeat 1');
    c.send('who'); // answered after the backend's pong: had that been relayed, it would have come first
    expect((await c.next()).data.toString()).toBe('a');
    expect(a.pings.slice(before)).toEqual(['heartbeat 1']);
    expect(c.pongs.map((p) => p.toString())).toEqual(['heartbeat 1']); // uWS's, once
    c.close(1000);
    await c.closed;
  }, T);

  it("relays a backend's refusal of the handshake as an ordinary response", async () => {
    const r = await wsConnect(lb.port, { path: '/refuse' });
    expect(r).not.toBeInstanceOf(WsClient);
    if (r instanceof WsClient) return;
    expect(r.status).toBe(403);
    expect(r.head).toMatch(/\r\nx-why: token/i);
    expect(r.body).toBe('nope\n');
  }, T);

  it('answers 502 when the backend is down, and closes the client with 1011 when its backend dies mid-stream', async () => {
    const dead = await freePort();
    const victim = await startWsBackend('victim');
    const port = await freePort();
    const lb2 = await startCorelb(corelbConfig({ port, workers: 1, pools: { down: [`http://127.0.0.1:${dead}`], victim: [victim.url] }, routes: [{ path_prefix: '/down', pool: 'down' }, { path_prefix: '/', pool: 'victim' }] }));
    const r = await wsConnect(lb2.port, { path: '/down' });
    expect(r instanceof WsClient ? 101 : r.status).toBe(502);
    const c = await wsOpen(lb2.port);
    c.send('x');
    expect((await c.next()).data.toString()).toBe('x');
    for (const s of victim.sockets) s.destroy();
    const closed = await c.closed;
    expect(closed.code).toBe(1011);
    await lb2.stop();
    await victim.close();
  }, T);

});

// A corelb and backends of their own, started afresh for each test (and each retry). In 3 of 35
// runs of this file under a busy loop (4 attempts), the first message after a handshake here got no
// answer: uWS had closed the client's WebSocket (1006) in the same call as its upgrade. That is a
// uWebSockets bug (uNetworking/uWebSockets#1928, fixed upstream by #1929, not in the build corelb
// uses): cork(), after an upgrade made outside uWS's callbacks, can read the new WebSocket's
// memory as the HTTP response's state. corelb logs it (front/websocket.ts) and cannot prevent it;
// a client has to reconnect. A failed attempt prints the corelb's last log lines, and is retried
// on a fresh corelb.
describe('WebSocket routing and memory, on a corelb of their own', () => {
  let lb: Corelb;
  let a: WsBackend;
  let b: WsBackend;
  beforeEach(async () => {
    a = await startWsBackend('a');
    b = await startWsBackend('b');
    lb = await startCorelb(routingConfig(a, b, null));
  }, T);
  afterEach(async () => {
    await lb.stop();
    await a.close();
    await b.close();
  }, T);

  /** The client's next message; on a timeout the corelb's last log lines go to stderr first. */
  const nextOrLog = async (c: WsClient): Promise<string> => {
    try {
      return (await c.next()).data.toString();
    } catch (e) {
      process.stderr.write(`websocket.test: ${(e as Error).message}; corelb's last log lines:\n${lb.stdout().slice(-4000)}\n`);
      throw e;
    }
  };

  it('routes the handshake by sticky cookie and by hash key', { timeout: T, retry: 2 }, async () => {
    const who = async (path: string, headers: Record<string, string> = {}): Promise<string> => {
      const c = await wsOpen(lb.port, { path, headers });
      c.send('who');
      const name = await nextOrLog(c);
      c.close(1000);
      await c.closed;
      return name;
    };
    // round-robin across both without affinity
    const plain = new Set<string>();
    for (let i = 0; i < 6; i++) plain.add(await who('/pair'));
    expect(plain).toEqual(new Set(['a', 'b']));
    // sticky: the cookie of backend b's id (read from an HTTP answer's Set-Cookie) sends every handshake to b
    const res = await fetch(`http://127.0.0.1:${lb.port}/sticky`);
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
    const body = await res.text();
    for (let i = 0; i < 6; i++) expect(await who('/sticky', { cookie })).toBe(body);
    // hash: one room, one backend
    const first = await who('/hashed?room=42');
    for (let i = 0; i < 6; i++) expect(await who('/hashed?room=42')).toBe(first);
  });

  it('keeps memory bounded for a client that reads nothing while its backend floods', { timeout: T, retry: 2 }, async () => {
    const c = await wsOpen(lb.port);
    c.send('who');
    expect(await nextOrLog(c)).toBe('a');
    const rssBefore = lb.rssBytes();
    c.socket.pause(); // reads nothing
    c.send('flood 400 262144'); // 100 MiB from the backend
    await sleep(3000);
    // the backend's own socket holds what corelb did not take: corelb paused its reads
    const backendQueued = Math.max(...[...a.sockets].map((s) => s.writableLength));
    expect(backendQueued).toBeGreaterThan(50 * 1024 * 1024);
    expect(lb.rssBytes() - rssBefore).toBeLessThan(48 * 1024 * 1024);
    c.socket.destroy();
  });
});

describe('WebSocket access log and failover', () => {
  it('writes an access line for the handshake (101, backend, upstreamMs) and one at the end (messages, bytes, close code, who closed)', async () => {
    const port = await freePort();
    const lb7 = await startCorelb(corelbConfig({ port, workers: 1, log: { access: true }, pools: { echo: [a.url], refusing: [refusing.url] }, routes: [{ path_prefix: '/refuse', pool: 'refusing' }, { path_prefix: '/', pool: 'echo' }] }));
    const c = await wsOpen(port, { path: '/chat?room=1' });
    c.send('hello'); // 5 bytes each way
    await c.next();
    c.send(Buffer.alloc(1000));
    await c.next();
    c.close(4001, 'client says bye');
    await c.closed;
    const d = await wsOpen(port, { path: '/other' });
    d.send('close 4002 backend says bye');
    await d.closed;
    const r = await wsConnect(port, { path: '/refuse' });
    expect(r instanceof WsClient ? 101 : r.status).toBe(403);
    const access = (path: string, kind: string) => (l: LogLine): boolean => l.msg === 'access' && l.path === path && l.websocket === kind;
    const opened = await lb7.waitForLog(access('/chat', 'handshake'));
    expect(opened).toMatchObject({ method: 'GET', status: 101, code: null, backend: a.url });
    expect(typeof opened.reqId).toBe('string');
    expect(opened.upstreamMs).toBeGreaterThanOrEqual(0);
    expect(opened.durationMs).toBeGreaterThanOrEqual(opened.upstreamMs as number);
    const ended = await lb7.waitForLog(access('/chat', 'closed'));
    expect(ended).toMatchObject({ reqId: opened.reqId, status: 101, backend: a.url, messagesIn: 2, bytesIn: 1005, messagesOut: 2, bytesOut: 1005, closeCode: 4001, closedBy: 'client' });
    expect(ended.durationMs).toBeGreaterThanOrEqual(0);
    expect(await lb7.waitForLog(access('/other', 'closed'))).toMatchObject({ messagesIn: 1, messagesOut: 0, closeCode: 4002, closedBy: 'backend' });
    expect(await lb7.waitForLog(access('/refuse', 'handshake'))).toMatchObject({ status: 403, backend: refusing.url, bytesOut: 5 });
    expect(lb7.logs().filter((l) => l.msg === 'access' && l.path === '/refuse')).toHaveLength(1); // no end line without an upgrade
    await lb7.stop();
  }, T);

  it('logs 499 for a client gone before its backend answered the handshake', async () => {
    let got: () => void;
    const reached = new Promise<void>((r) => (got = r));
    const silent = net.createServer(() => got()); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = await freePort();
    const url = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const lb12 = await startCorelb(corelbConfig({ port, workers: 1, log: { access: true }, pools: { silent: [url] } }));
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /gone HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n');
    await reached;
    client.destroy();
    expect(await lb12.waitForLog((l) => l.msg === 'access' && l.path === '/gone')).toMatchObject({ status: 499, code: 'CLB_ERR_CLIENT_ABORTED', backend: url, websocket: 'handshake' });
    await lb12.stop();
    silent.close();
  }, T);

  it('retries a handshake whose backend cannot be connected on another backend of the pool, bounded by retries', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const port = await freePort();
    const lb8 = await startCorelb(corelbConfig({ port, workers: 1, log: { access: true }, pools: { mixed: { backends: [dead, a.url] }, none: { backends: [dead, a.url], retries: 0 } }, routes: [{ path_prefix: '/none', pool: 'none' }, { path_prefix: '/', pool: 'mixed' }] }));
    for (let i = 0; i < 6; i++) {
      const c = await wsOpen(port);
      c.send('who');
      expect((await c.next()).data.toString()).toBe('a');
      c.close(1000);
      await c.closed;
    }
    const retried = await lb8.waitForLog((l) => l.msg === 'retrying on another backend' && l.websocket === true);
    expect(retried).toMatchObject({ code: 'CLB_ERR_CONNECT', backend: dead, next: a.url });
    // retries: 0: the handshake that picked the dead backend gets its 502
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await wsConnect(port, { path: '/none' });
      if (r instanceof WsClient) {
        statuses.push(101);
        r.close(1000);
        await r.closed;
      } else statuses.push(r.status);
    }
    expect(statuses.sort()).toEqual([101, 502]);
    expect(await lb8.waitForLog((l) => l.msg === 'access' && l.status === 502)).toMatchObject({ path: '/none', code: 'CLB_ERR_CONNECT', backend: dead, websocket: 'handshake' });
    await lb8.stop();
  }, T);
});

describe('WebSocket handshake answers that break the rules, and the idle timeout', () => {
  it('answers 502 to a 101 with a wrong Sec-WebSocket-Accept, to one agreeing an extension that was not offered, and to one choosing a subprotocol that was not, saying why', async () => {
    const wrongAccept = await startWsBackend('wrong-accept', { accept: 'd3JvbmcgYWNjZXB0IGtleQ==' });
    const extension = await startWsBackend('extension', { fields: 'sec-websocket-extensions: permessage-deflate\r\n' });
    const chooser = await startWsBackend('chooser', { fields: 'sec-websocket-protocol: chat.v2\r\n' });
    const port = await freePort();
    const lb9 = await startCorelb(
      corelbConfig({
        port,
        workers: 1,
        pools: { accept: [wrongAccept.url], ext: [extension.url], proto: [chooser.url] },
        routes: [{ path_prefix: '/accept', pool: 'accept' }, { path_prefix: '/proto', pool: 'proto' }, { path_prefix: '/', pool: 'ext' }],
      }),
    );
    for (const [path, why, backend, protocols] of [
      ['/accept', '101 answer without a valid Sec-WebSocket-Accept', wrongAccept, undefined],
      ['/ext', 'the backend agreed an extension that was not offered', extension, undefined],
      ['/proto', 'the backend chose a subprotocol that was not offered', chooser, undefined],
      ['/proto', 'the backend chose a subprotocol that was not offered', chooser, ['chat.v1', 'Chat.V2']],
    ] as const) {
      const from = lb9.logs().length;
      const handshakes = backend.handshakes.length;
      const r = await wsConnect(port, { path, protocols: protocols === undefined ? undefined : [...protocols] });
      expect(r instanceof WsClient ? 101 : r.status, `${path} ${String(protocols)}`).toBe(502);
      expect(backend.handshakes).toHaveLength(handshakes + 1); // answered, and not tried again
      await eventually(() => expect(lb9.logs().slice(from).find((l) => l.msg === why)).toMatchObject({ code: 'CLB_ERR_INVALID_RESPONSE', backend: backend.url, websocket: true }));
    }
    // offered, on a second line of the field: the upgrade goes ahead with it
    const ok = await wsConnect(port, { path: '/proto', protocols: ['chat.v1'], headers: { 'sec-websocket-protocol': 'x, chat.v2' } });
    expect(ok).toBeInstanceOf(WsClient);
    if (ok instanceof WsClient) {
      expect(ok.protocol).toBe('chat.v2');
      ok.close(1000);
      await ok.closed;
    }
    await lb9.stop();
    await wrongAccept.close();
    await extension.close();
    await chooser.close();
  }, T);

  it('refuses with 400 a handshake whose Connection field does not name upgrade, and with 426 one of a version other than 13 (the backend not asked); "keep-alive, Upgrade" is one', async () => {
    const port = await freePort();
    const lb13 = await startCorelb(corelbConfig({ port, workers: 1, pools: { echo: [b.url] } }));
    const before = b.handshakes.length;
    // `close` is also what makes uWS close a WebSocket right after an upgrade made outside its
    // callbacks: without the refusal, this client got a 101 and then the connection cut, every time
    for (const connection of ['close', 'keep-alive']) {
      const r = await wsConnect(port, { connection });
      expect(r instanceof WsClient ? 101 : r.status, connection).toBe(400);
    }
    expect(b.handshakes.length).toBe(before);
    expect(await lb13.waitForLog((l) => l.msg === 'a WebSocket handshake whose Connection field does not name upgrade')).toMatchObject({ code: 'CLB_ERR_BAD_REQUEST', websocket: true });
    // a version other than 13, or none: RFC 6455 §4.4's 426 naming 13, the backend not asked
    for (const [version, why] of [
      ['8', 'a WebSocket handshake of version 8 (corelb speaks 13)'],
      [null, 'a WebSocket handshake without Sec-WebSocket-Version'],
    ] as const) {
      const r = await wsConnect(port, { version });
      expect(r instanceof WsClient ? 101 : r.status, String(version)).toBe(426);
      if (!(r instanceof WsClient)) expect(r.head).toMatch(/\r\nsec-websocket-version: 13(\r\n|$)/i);
      expect(await lb13.waitForLog((l) => l.msg === why)).toMatchObject({ code: 'CLB_ERR_WEBSOCKET_VERSION', websocket: true });
    }
    expect(b.handshakes.length).toBe(before);
    const c = await wsOpen(port, { connection: 'keep-alive, Upgrade' }); // Firefox's
    c.send('hi');
    expect((await c.next()).data.toString()).toBe('hi');
    c.close(1000);
    await c.closed;
    expect(lb13.logs().some((l) => String(l.msg).includes('in the same call as its upgrade'))).toBe(false);
    await lb13.stop();
  }, T);

  it('closes a client silent past timeouts.websocket_idle (pings unanswered) and tells its backend; one answering the pings stays', async () => {
    const port = await freePort();
    // 8 s, uWS's least: it pings a silent client after 4 s and closes it 4 s later
    const lb10 = await startCorelb(corelbConfig({ port, workers: 1, pools: { echo: [b.url] }, timeouts: { websocket_idle: '8s' } }));
    const before = b.closes.length;
    const live = await wsOpen(port);
    const silent = await wsOpen(port, { answerPings: false });
    const closed = await silent.closed;
    expect(closed.code).toBe(1006); // cut by uWS without a close frame
    expect(silent.pings.length).toBeGreaterThan(0);
    await eventually(() => expect(b.closes.slice(before)).toEqual([[1001, 'client went away']]));
    expect(live.pings.length).toBeGreaterThan(0);
    live.send('still here');
    expect((await live.next()).data.toString()).toBe('still here');
    live.close(1000);
    await live.closed;
    await lb10.stop();
  }, 30_000);
});

describe('WebSocket metrics', () => {
  it('counts open WebSockets per pool and backend, and messages and bytes each way, across a reload', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const cfg = corelbConfig({ port, workers: 2, pools: { chat: [b.url] }, admin: { port: adminPort } });
    const lb5 = await startCorelb(cfg);
    const scrape = async (): Promise<Exposition> => parseExposition(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text());
    const labels = { pool: 'chat', backend: b.url };
    const c1 = await wsOpen(port);
    const c2 = await wsOpen(port);
    c1.send('hello'); // 5 bytes each way
    await c1.next();
    c2.send(Buffer.alloc(1000));
    await c2.next();
    let m = await scrape();
    expect(metric(m, 'corelb_websockets_open', labels)).toBe(2);
    expect(metric(m, 'corelb_websocket_messages_total', { ...labels, direction: 'to_backend' })).toBe(2);
    expect(metric(m, 'corelb_websocket_messages_total', { ...labels, direction: 'to_client' })).toBe(2);
    expect(metric(m, 'corelb_websocket_bytes_total', { ...labels, direction: 'to_client' })).toBe(1005);
    // a reload (a new buffer): the open ones still count, and so do their messages
    const { writeFileSync } = await import('node:fs');
    writeFileSync(lb5.configFile, toYaml({ ...cfg, pools: { chat: { algorithm: 'round-robin', backends: [b.url] }, other: { algorithm: 'round-robin', backends: [a.url] } }, routes: [{ path_prefix: '/', pool: 'chat' }] }));
    const from = lb5.logs().length;
    process.kill(lb5.pid, 'SIGHUP');
    await lb5.waitForLogAfter(from, (l) => l.msg === 'reloaded', 10_000);
    c1.send('again');
    await c1.next();
    c1.close(1000);
    await c1.closed;
    await eventually(async () => {
      m = await scrape();
      expect(metric(m, 'corelb_websockets_open', labels)).toBe(1);
      expect(metric(m, 'corelb_websocket_messages_total', { ...labels, direction: 'to_backend' })).toBe(3);
      expect(metric(m, 'corelb_websocket_bytes_total', { ...labels, direction: 'to_backend' })).toBe(1010);
    });
    c2.close(1000);
    await c2.closed;
    await lb5.stop();
  }, T);
});

describe('WebSocket limits', () => {
  it('cuts a client over limits.websocket_message, one that outpaces its stalled backend with 1013; h2c is not tunnelled', async () => {
    const port = await freePort();
    const lb4 = await startCorelb(corelbConfig({ port, workers: 1, pools: { echo: [a.url] }, limits: { websocket_message: '1mb' } }));
    const big = await wsOpen(port);
    big.send(Buffer.alloc(2 * 1024 * 1024));
    // uWS cuts the connection (its 1009 frame, if any, is lost in the reset of the unread rest)
    expect([1006, 1009]).toContain((await big.closed).code);
    const fast = await wsOpen(port);
    fast.send('stall');
    const chunk = Buffer.alloc(512 * 1024);
    for (let i = 0; i < 64 && fast.closeFrame === null; i++) {
      fast.send(chunk);
      await sleep(5);
    }
    const closed = await fast.closed;
    expect(closed).toMatchObject({ code: 1013, framed: true });
    // another Upgrade token: forwarded as an ordinary request, the header dropped
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ port, host: '127.0.0.1', path: '/plain', headers: { upgrade: 'h2c', connection: 'upgrade', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
    });
    expect(r).toEqual({ status: 200, body: 'a' });
    await lb4.stop();
  }, T);
});

describe('WebSocket limits on a reload', () => {
  it('keeps the running websocket_message and websocket_idle over a reload that changes them, with a warning naming both', async () => {
    const port = await freePort();
    const cfg = corelbConfig({ port, workers: 1, pools: { echo: [a.url] }, limits: { websocket_message: '1mb' }, timeouts: { websocket_idle: '1m' } });
    const lb11 = await startCorelb(cfg);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(lb11.configFile, toYaml({ ...cfg, limits: { ...(cfg.limits as object), websocket_message: '4mb' }, timeouts: { ...(cfg.timeouts as object), websocket_idle: '2m' } }));
    const from = lb11.logs().length;
    process.kill(lb11.pid, 'SIGHUP');
    const warned = await lb11.waitForLogAfter(from, (l) => Array.isArray(l.fields), 10_000);
    expect(warned.fields).toEqual(['timeouts.websocket_idle', 'limits.websocket_message']);
    expect(warned.msg).toBe('timeouts.websocket_idle, limits.websocket_message change only on restart: the running values are kept');
    await lb11.waitForLogAfter(from, (l) => l.msg === 'reloaded', 10_000);
    // a new WebSocket after the reload: still 1 MiB at most
    const c = await wsOpen(port);
    c.send(Buffer.alloc(512 * 1024));
    expect((await c.next()).data.length).toBe(512 * 1024);
    c.send(Buffer.alloc(2 * 1024 * 1024));
    expect([1006, 1009]).toContain((await c.closed).code);
    await lb11.stop();
  }, T);
});

describe('WebSocket over TLS, reload and stop', () => {
  it('works as wss over a TLS listener, stays on its backend over a reload, and is closed with 1001 by a graceful stop', async () => {
    const ca = makeCa();
    const site = makeLeaf(ca, 'site', { names: ['site.test'] });
    const port = await freePort();
    const cfg = {
      ...corelbConfig({ workers: 1, pools: { echo: [a.url] }, timeouts: { drain: '1s' } }),
      listen: [{ port, tls: { certificates: [{ cert: site.cert, key: site.key }] } }],
    };
    const lb3 = await startCorelb(cfg);
    const c = await wsOpen(port, { tls: { ca: readFileSync(ca.cert, 'utf8'), servername: 'site.test' } });
    c.send('over tls');
    expect((await c.next()).data.toString()).toBe('over tls');
    // a reload that moves the pool to b: the open WebSocket stays on a
    const { writeFileSync } = await import('node:fs');
    writeFileSync(lb3.configFile, toYaml({ ...cfg, pools: { echo: { algorithm: 'round-robin', backends: [b.url] } } }));
    const from = lb3.logs().length;
    process.kill(lb3.pid, 'SIGHUP');
    await lb3.waitForLogAfter(from, (l) => /reload/i.test(String(l.msg)) && l.level === 30, 10_000).catch(() => undefined);
    await sleep(500);
    c.send('who');
    expect((await c.next()).data.toString()).toBe('a');
    const d = await wsOpen(port, { tls: { ca: readFileSync(ca.cert, 'utf8'), servername: 'site.test' } });
    d.send('who');
    expect((await d.next()).data.toString()).toBe('b');
    const before = a.closes.length;
    const stopped = lb3.stop('SIGTERM');
    expect(await c.closed).toEqual({ code: 1001, reason: 'server shutting down', framed: true });
    expect((await d.closed).code).toBe(1001);
    await stopped;
    await eventually(() => expect(a.closes.slice(before)).toContainEqual([1001, 'server shutting down']));
  }, T);

  it('speaks to an https backend over TLS (the pool verifying it with its CA)', async () => {
    const ca = makeCa();
    const leaf = makeLeaf(ca, 'backend', { names: ['backend.test'] });
    const secure = await startWsBackend('secure', { server: https.createServer({ key: readFileSync(leaf.key), cert: readFileSync(leaf.cert) }) });
    expect(secure.url).toMatch(/^https:/);
    const port = await freePort();
    const cfg = corelbConfig({ port, workers: 1, pools: { echo: [secure.url] } });
    (cfg.pools as Record<string, Record<string, unknown>>).echo!.tls = { ca: ca.cert, servername: 'backend.test' };
    const lb6 = await startCorelb(cfg);
    const c = await wsOpen(port);
    c.send('who');
    expect((await c.next()).data.toString()).toBe('secure');
    c.send(Buffer.alloc(300_000, 7));
    expect((await c.next()).data.length).toBe(300_000);
    c.close(1000);
    expect((await c.closed).code).toBe(1000);
    await lb6.stop();
  }, T);
});

async function eventually(check: () => void | Promise<void>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(50);
    }
  }
}
