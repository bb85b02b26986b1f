// Process lifecycle: access log on/off, graceful SIGTERM with a request in flight, SIGINT, and
// shutdown with idle keep-alive client connections open.
import http from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb, type Corelb } from '../helpers/corelb.js';
import { echoOrigin, startOrigin, startRawHttpOrigin } from '../helpers/origins.js';
import { request } from '../helpers/http.js';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;

afterEach(stopEverything);
afterAll(stopEverything);

function expectCleanExit(lb: Corelb, exit: { code: number | null; signal: NodeJS.Signals | null; killedAfterTimeout: boolean }) {
  expect(exit.killedAfterTimeout, 'did not exit within 20 s of the signal').toBe(false);
  expect(exit.signal).toBeNull();
  expect(exit.code, lb.stderr()).toBe(0);
  expect(lb.stderr()).not.toMatch(/abort|core dumped/i);
  expect(lb.logs().some((l) => l.msg === 'stopped')).toBe(true);
}

describe('access log', () => {
  it('log.access: true writes one access line per request with the documented fields', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, log: { level: 'info', access: true }, pools: { web: [origin.url] } }));
    const a = await request(`${lb.url}/a?x=1`);
    const b = await request(`${lb.url}/b`, { method: 'POST', body: 'hello' });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    const get = await lb.waitForLog((l) => l.msg === 'access' && l.method === 'GET');
    const post = await lb.waitForLog((l) => l.msg === 'access' && l.method === 'POST');
    for (const [line, pathStart] of [
      [get, '/a'],
      [post, '/b'],
    ] as const) {
      expect(String(line.path).startsWith(pathStart), JSON.stringify(line)).toBe(true);
      expect(line.status).toBe(200);
      expect(typeof line.backend).toBe('string');
      expect(String(line.backend)).toContain(String(origin.port));
      expect(typeof line.bytesIn).toBe('number');
      expect(typeof line.bytesOut).toBe('number');
      expect(line.bytesOut as number).toBeGreaterThan(0);
      expect(typeof line.durationMs).toBe('number');
      expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
      expect(typeof line.reqId).toBe('string');
      expect((line.reqId as string).length).toBeGreaterThan(0);
    }
    expect(post.bytesIn as number).toBeGreaterThanOrEqual(5);
    expect(post.reqId).not.toBe(get.reqId);
    const exit = await lb.stop('SIGTERM');
    expectCleanExit(lb, exit);
    expect(lb.logs().filter((l) => l.msg === 'access').length).toBe(2);
  }, T);

  it('exactly one access line per request, also for error responses and responses that break mid-body', async () => {
    const origin = await startRawHttpOrigin(async ({ req, socket }) => {
      if (req.target === '/break') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        await sleep(200);
        socket.write('zz\r\nnot a chunk\r\n');
        return 'stop';
      }
      if (req.target === '/bad') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n');
        return 'stop';
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const lb = await startCorelb(
      corelbConfig({
        workers: 1,
        log: { level: 'info', access: true },
        pools: { web: [origin.url] },
        routes: [{ path_prefix: '/', pool: 'web' }],
      }),
    );
    const ok = await request(`${lb.url}/ok`);
    expect(ok.status).toBe(200);
    const bad = await request(`${lb.url}/bad`);
    expect(bad.status).toBe(502);
    await request(`${lb.url}/break`).catch(() => undefined);
    await lb.waitForLog((l) => l.msg === 'access' && l.path === '/break');
    const exit = await lb.stop('SIGTERM');
    expectCleanExit(lb, exit);
    const access = lb.logs().filter((l) => l.msg === 'access');
    const byPath = (p: string) => access.filter((l) => l.path === p);
    expect(byPath('/ok').length).toBe(1);
    expect(byPath('/bad').length).toBe(1);
    expect(byPath('/bad')[0]!.status).toBe(502);
    expect(byPath('/break').length, JSON.stringify(byPath('/break'))).toBe(1);
    const reqIds = access.map((l) => l.reqId);
    expect(new Set(reqIds).size).toBe(reqIds.length);
  }, T);

  it('log.access: false writes no access lines', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, log: { level: 'info', access: false }, pools: { web: [origin.url] } }));
    for (let i = 0; i < 3; i++) expect((await request(`${lb.url}/quiet/${i}`)).status).toBe(200);
    expect(origin.requests.length).toBe(3);
    const exit = await lb.stop('SIGTERM');
    expectCleanExit(lb, exit);
    expect(lb.logs().filter((l) => l.msg === 'access')).toEqual([]);
  }, T);
});

describe('signals', () => {
  it('SIGTERM with a 1 s request in flight: the request completes with 200 and the process exits 0', async () => {
    const origin = await startOrigin((_, res) => {
      setTimeout(() => res.end('finished after a second'), 1000);
    });
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
    const inflight = request(`${lb.url}/slow`, { timeoutMs: 30_000 });
    await origin.waitForRequests(1);
    const exiting = lb.stop('SIGTERM');
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(r.text).toBe('finished after a second');
    // while draining, the response tells the client not to reuse the connection
    expect(r.headers.connection).toBe('close');
    expect(r.complete).toBe(true);
    const exit = await exiting;
    expectCleanExit(lb, exit);
  }, T);

  it('SIGINT exits 0', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
    expect((await request(`${lb.url}/x`)).status).toBe(200);
    const exit = await lb.stop('SIGINT');
    expectCleanExit(lb, exit);
  }, T);

  it('SIGTERM with idle keep-alive client connections open still exits 0', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      const rs = await Promise.all([0, 1, 2, 3].map((i) => request(`${lb.url}/ka/${i}`, { agent })));
      for (const r of rs) expect(r.status).toBe(200);
      const exit = await lb.stop('SIGTERM');
      expectCleanExit(lb, exit);
    } finally {
      agent.destroy();
    }
  }, T);

  it('SIGTERM with a request longer than timeouts.drain: the drain ends at timeouts.drain, the request is cut, exit 0', async () => {
    const origin = await startOrigin(() => {
      /* never answers */
    });
    const lb = await startCorelb(corelbConfig({ workers: 1, timeouts: { drain: '700ms' }, log: { access: true }, pools: { web: [origin.url] } }));
    const inflight = request(`${lb.url}/forever`, { timeoutMs: 30_000 }).catch((e: Error) => e);
    await origin.waitForRequests(1);
    const from = performance.now();
    const exit = await lb.stop('SIGTERM');
    const took = performance.now() - from;
    expectCleanExit(lb, exit);
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(5000);
    const r = await inflight;
    expect(r instanceof Error || !r.complete, 'the request still in flight is cut, not answered as complete').toBe(true);
    expect(lb.logs().some((l) => l.msg === 'drain time is over: closing requests still in flight')).toBe(true);
    // the cut is corelb's doing, not the client's: its own code in the log and the access log
    const cut = lb.logs().filter((l) => l.code === 'CLB_ERR_DRAIN_TIMEOUT' && l.msg !== 'access');
    expect(cut.length, lb.stdout()).toBe(1);
    expect(cut[0]!.path).toBe('/forever');
    const access = lb.logs().filter((l) => l.msg === 'access' && l.path === '/forever');
    expect(access.map((l) => [l.status, l.code])).toEqual([[503, 'CLB_ERR_DRAIN_TIMEOUT']]);
    expect(lb.logs().some((l) => l.code === 'CLB_ERR_CLIENT_ABORTED')).toBe(false);
  }, T);

  it('SIGQUIT stops at once, also in the middle of a drain: in-flight requests are cut, exit 0', async () => {
    const origin = await startOrigin(() => {
      /* never answers */
    });
    const lb = await startCorelb(corelbConfig({ workers: 2, timeouts: { drain: '20s' }, pools: { web: [origin.url] } }));
    const inflight = request(`${lb.url}/forever`, { timeoutMs: 30_000 }).catch((e: Error) => e);
    await origin.waitForRequests(1);
    process.kill(lb.pid, 'SIGTERM'); // a 20 s drain begins
    await lb.waitForLog((l) => l.msg === 'stopping: draining in-flight requests');
    const from = performance.now();
    const exit = await lb.stop('SIGQUIT');
    expect(performance.now() - from).toBeLessThan(3000);
    expectCleanExit(lb, exit);
    const r = await inflight;
    expect(r instanceof Error || !r.complete).toBe(true);
  }, T);

  it('SIGQUIT alone stops at once and exits 0', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
    expect((await request(`${lb.url}/x`)).status).toBe(200);
    const exit = await lb.stop('SIGQUIT');
    expectCleanExit(lb, exit);
    expect(lb.logs().some((l) => l.msg === 'stopping at once')).toBe(true);
  }, T);

  it('SIGTERM right after ready (no traffic) exits 0', async () => {
    const origin = await echoOrigin('web');
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: [origin.url] } }));
    const exit = await lb.stop('SIGTERM');
    expectCleanExit(lb, exit);
  }, T);
});
