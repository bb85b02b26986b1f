// Faults inside the proxy process, under load (3-backend pool, 2 workers): a request that throws
// inside a worker (the test-only CORELB_TEST_THROW_PATH) gets 500 with its request id logged and
// costs no other request; SIGTERM under load lets every accepted request finish with 2xx, the
// only client errors being refused connections once the listen socket is closed (and a new
// connection still in a closing listen socket's queue, which the kernel resets), and exits 0; a
// request sent on an idle keep-alive connection as the drain's last request is answered is
// answered too (the drain waits for a quiet moment before it closes connections).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { describeLoad, sleep, startLoad, windowOf } from '../helpers/load.js';
import { startOriginProcess, type OriginProcess } from '../helpers/origin-process.js';
import { connect, header, readResponse, SocketReader } from '../helpers/raw.js';

const T = 60_000;
const THROW_PATH = '/__corelb_test/throw';

afterEach(stopEverything);
afterAll(stopEverything);

async function threeBackends(delayMs = 0): Promise<OriginProcess[]> {
  return Promise.all(['b1', 'b2', 'b3'].map((id) => startOriginProcess({ id, mode: delayMs > 0 ? 'delay' : 'ok', delayMs })));
}

describe('an exception inside a worker', () => {
  it('the throwing request gets 500 with its x-request-id logged; concurrent and later requests succeed', async () => {
    const backends = await threeBackends();
    const lb = await startCorelb(corelbConfig({ workers: 2, pools: { web: backends.map((b) => b.url) } }), {
      env: { CORELB_TEST_THROW_PATH: THROW_PATH },
    });
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: 6, maxRequests: 300_000, maxDurationMs: 20_000 });
    await load.waitFor((s) => s.ok >= 100, 15_000, '100 answers');

    const thrown: { status: number; reqId: string; worker: unknown; text: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const reply = await request(`${lb.url}${THROW_PATH}`, { timeoutMs: 10_000 });
      const reqId = String(reply.headers['x-request-id'] ?? '');
      const logged = reqId ? await lb.waitForLog((l) => l.reqId === reqId && typeof l.level === 'number' && l.level >= 50, 5000) : null;
      thrown.push({ status: reply.status, reqId, worker: logged?.worker, text: reply.text });
    }
    const lastThrowAt = Date.now();
    await sleep(500);
    const r = await load.stop();
    const later = await Promise.all([0, 1, 2, 3].map((i) => request(`${lb.url}/later/${i}`, { timeoutMs: 10_000 })));

    const tail = windowOf(r, lastThrowAt - r.startedAt, Number.MAX_SAFE_INTEGER);
    console.log(
      [
        describeLoad('planted throw under load', r),
        `  throw requests: ${thrown.map((x) => `${x.status} ${x.reqId} (worker ${String(x.worker)})`).join(', ')}`,
        `  after the last throw: ${tail.failed} failed / ${tail.total}; later requests: ${later.map((x) => x.status).join(',')}`,
      ].join('\n'),
    );

    for (const x of thrown) {
      expect(x.status).toBe(500);
      expect(x.reqId.length).toBeGreaterThan(0);
      expect(x.text.length).toBeLessThan(512);
    }
    expect(new Set(thrown.map((x) => x.reqId)).size).toBe(thrown.length);
    expect(r.failed, describeLoad('concurrent load', r)).toBe(0);
    expect(tail.total).toBeGreaterThan(0);
    for (const x of later) expect(x.status).toBe(200);
    expect(lb.proc.exitCode).toBeNull();
    const exit = await lb.stop('SIGTERM');
    expect(exit.code).toBe(0);
  }, T);
});

describe('SIGTERM with a keep-alive connection idle', () => {
  it('a request sent on it the moment the last request in flight is answered is answered too, with Connection: close', async () => {
    const [origin] = await Promise.all([startOriginProcess({ id: 'slow', mode: 'delay', delayMs: 300 })]);
    const lb = await startCorelb(corelbConfig({ workers: 1, timeouts: { connect: '2s', response: '30s', idle: '60s', drain: '5s' }, pools: { web: [origin!.url] } }));
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
    // b: a keep-alive connection that has had its answer and sits idle at the stop
    const b = await connect(lb.port);
    const bReader = new SocketReader(b);
    b.write(get('/b1'));
    expect((await readResponse(bReader))?.status).toBe(200);
    // a: the one request in flight during the drain
    const a = await connect(lb.port);
    const aReader = new SocketReader(a);
    a.write(get('/a'));
    await sleep(100);
    const stopped = lb.stop('SIGTERM');
    // b's next request leaves as a's answer arrives: when nothing is in flight any more
    a.once('data', () => b.write(get('/b2')));
    const aAnswer = await readResponse(aReader);
    const bAnswer = await readResponse(bReader);
    const exit = await stopped;
    console.log(`SIGTERM with an idle keep-alive connection: a ${String(aAnswer?.status)}, b's next request ${String(bAnswer?.status)} (${bReader.error?.message ?? 'no socket error'}), exit ${JSON.stringify(exit)}`);
    expect(aAnswer?.status).toBe(200);
    expect(bAnswer?.status, bReader.error?.message ?? 'closed without an answer').toBe(200);
    expect(header(bAnswer!, 'connection')?.toLowerCase()).toBe('close');
    expect(exit.code).toBe(0);
    a.destroy();
    b.destroy();
  }, T);
});

describe('SIGTERM under load', () => {
  it('every answered request is 2xx, the only errors are refused connections after the listen socket closed, exit 0', async () => {
    const backends = await threeBackends(20);
    const lb = await startCorelb(
      corelbConfig({ workers: 2, timeouts: { connect: '2s', response: '30s', idle: '60s', drain: '5s' }, pools: { web: backends.map((b) => b.url) } }),
    );
    const load = await startLoad({ url: `${lb.url}/work`, concurrency: 8, maxRequests: 300_000, maxDurationMs: 20_000, errorPauseMs: 20 });
    await load.waitFor((s) => s.ok >= 200, 15_000, '200 answers');

    const termAt = Date.now();
    const exit = await lb.stop('SIGTERM');
    const exitedAt = Date.now();
    // keep the load on a little longer: every new connection must now be refused
    await load.waitFor((s) => s.failed >= 8, 5000, 'refused connections after the exit');
    const r = await load.stop();

    const t = (epoch: number) => epoch - r.startedAt;
    const before = windowOf(r, 0, t(termAt));
    const refused = r.failures.filter((f) => f.code === 'ECONNREFUSED');
    // A new connection the kernel completed into a listen socket's queue just before corelb closed
    // that socket is reset by the kernel (net.ipv4.tcp_migrate_req hands it on only to a listener
    // still open): corelb never accepted it, and to the client it is a refusal. It can only be a
    // new connection, opened after SIGTERM, reset before the first refusal (once every listen
    // socket is closed, connections are refused); anything else is a request lost.
    const firstRefusedT = refused.length ? Math.min(...refused.map((f) => f.t)) : -1;
    const queuedAtClose = (f: (typeof r.failures)[number]) =>
      f.code === 'ECONNRESET' && f.reusedSocket !== true && f.startT >= t(termAt) && firstRefusedT >= 0 && f.t <= firstRefusedT + 10;
    const nonRefused = r.failures.filter((f) => f.code !== 'ECONNREFUSED' && !queuedAtClose(f));
    console.log(
      [
        describeLoad('SIGTERM under load', r),
        `  before SIGTERM ${before.ok} ok; reset in a closing listen socket's queue ${r.failures.filter(queuedAtClose).length}; exit ${exitedAt - termAt} ms after SIGTERM; last 2xx +${r.lastOkAt - termAt} ms; ${r.connectionClose} answers with Connection: close; refused ${refused.length}, first at +${firstRefusedT >= 0 ? firstRefusedT - t(termAt) : '-'} ms after SIGTERM; exit ${JSON.stringify(exit)}`,
      ].join('\n'),
    );

    expect(exit.killedAfterTimeout).toBe(false);
    expect(exit.signal).toBeNull();
    expect(exit.code, lb.stderr()).toBe(0);
    for (const s of Object.keys(r.statuses)) expect(Number(s), `status ${s}`).toBeLessThan(300);
    expect(nonRefused, describeLoad('SIGTERM', r)).toEqual([]);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const f of refused) expect(f.startT).toBeGreaterThanOrEqual(t(termAt));
    // requests in flight at SIGTERM finished, and told the client not to reuse the connection
    expect(r.lastOkAt).toBeGreaterThan(termAt);
    expect(r.connectionClose).toBeGreaterThan(0);
  }, T);
});
