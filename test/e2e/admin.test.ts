// The admin server of a real corelb (2 workers, origins on 127.0.0.1): after a known set of
// requests /metrics and /status report exactly those counts; drain, enable, weight and reload
// actions change routing on every worker (requests on fresh connections, which the kernel spreads
// over both workers); counters never go down across generations; the token guards every route;
// bad requests get 400/404/405 naming the field; a taken admin port stops the start with exit 1.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin.js';
import { corelbConfig, startCorelb, toYaml, type Corelb, type ConfigSpec } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { metric, metricSum, type Exposition } from '../helpers/prom.js';
import { sleep } from '../helpers/time.js';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;
const TOKEN = 'test-token-0123456789abcdef';

afterEach(stopEverything);
afterAll(stopEverything);

/** Three origins; a path starting with /slow is answered after 800 ms. */
async function origins(n = 3): Promise<Origin[]> {
  return Promise.all(
    Array.from({ length: n }, (_, k) =>
      startOrigin(async (req, res) => {
        if (req.url?.startsWith('/web/slow')) await sleep(800);
        res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': `o${k}` });
        res.end(`ok o${k}\n`);
      }),
    ),
  );
}

/** Requests sent to each origin so far. */
const seen = (os: Origin[]) => os.map((o) => o.requests.length);
const minus = (a: number[], b: number[]) => a.map((v, k) => v - b[k]!);

/** `n` GETs one after another, each on a fresh connection; all must answer `status`. */
async function sequential(url: string, n: number, status = 200): Promise<void> {
  for (let k = 0; k < n; k++) {
    const r = await request(url);
    expect(r.status, `request ${k} to ${url}: ${r.text}`).toBe(status);
  }
}

async function start(spec: ConfigSpec, token?: string): Promise<{ lb: Corelb; admin: AdminClient }> {
  const port = await freePort();
  const lb = await startCorelb(corelbConfig({ ...spec, admin: { port, ...(token === undefined ? {} : { token }) } }));
  return { lb, admin: adminClient(`http://127.0.0.1:${port}`, token) };
}

/** Every counter series of `before` is <= the same series in `after` (and still there). */
function expectMonotonic(before: Exposition, after: Exposition): void {
  for (const f of before.values()) {
    if (f.type === 'gauge') continue;
    for (const s of f.samples) {
      const later = metric(after, s.name, s.labels as Record<string, string>);
      expect(later, `${s.name}${JSON.stringify(s.labels)}`).toBeGreaterThanOrEqual(s.value);
    }
  }
}

describe('admin: counts', () => {
  it('/metrics and /status report exactly the requests sent: per backend and class, 404s, a 502, workers, the histogram', async () => {
    const os = await origins();
    const dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const urls = os.map((o) => o.url);
    const { lb, admin } = await start({
      workers: 2,
      pools: { web: urls, dead: { backends: [dead], retries: 0 } },
      routes: [
        { path_prefix: '/web', pool: 'web' },
        { path_prefix: '/dead', pool: 'dead' },
      ],
    });
    await sequential(`${lb.url}/web/x`, 30);
    await sequential(`${lb.url}/nowhere`, 4, 404);
    await sequential(`${lb.url}/dead/x`, 1, 502);
    expect(seen(os)).toEqual([10, 10, 10]);

    const e = await admin.waitForMetrics((m) => metricSum(m, 'corelb_requests_total') >= 35, '35 requests counted');
    for (const url of urls) {
      const b = { pool: 'web', backend: url };
      expect(metric(e, 'corelb_requests_total', { ...b, code: '2xx' }), url).toBe(10);
      expect(metric(e, 'corelb_backend_attempts_total', b)).toBe(10);
      expect(metric(e, 'corelb_backend_response_seconds_count', b)).toBe(10);
      expect(metric(e, 'corelb_backend_response_seconds_bucket', { ...b, le: '+Inf' })).toBe(10);
      expect(metric(e, 'corelb_backend_response_seconds_sum', b)).toBeGreaterThan(0);
      expect(metric(e, 'corelb_backend_up', b)).toBe(1);
      expect(metric(e, 'corelb_backend_state', { ...b, state: 'up' })).toBe(1);
      expect(metric(e, 'corelb_backend_weight', b)).toBe(1);
      expect(metric(e, 'corelb_backend_effective_weight', b)).toBe(1);
      expect(metric(e, 'corelb_backend_inflight', b)).toBe(0);
    }
    const d = { pool: 'dead', backend: dead };
    expect(metric(e, 'corelb_requests_total', { ...d, code: '5xx' })).toBe(1);
    expect(metric(e, 'corelb_backend_failures_total', { ...d, kind: 'connect' })).toBe(1);
    expect(metric(e, 'corelb_backend_response_seconds_count', d)).toBe(0);
    expect(metric(e, 'corelb_requests_total', { pool: '', backend: '', code: '4xx' })).toBe(4);
    expect(metricSum(e, 'corelb_requests_total')).toBe(35);
    expect(metricSum(e, 'corelb_requests_total', { code: '2xx' })).toBe(30);
    expect(metricSum(e, 'corelb_backend_failures_total')).toBe(1);
    expect(metricSum(e, 'corelb_backend_retries_total')).toBe(0);
    expect(metricSum(e, 'corelb_worker_requests_total')).toBe(35);
    expect(metricSum(e, 'corelb_worker_inflight')).toBe(0);
    expect(metric(e, 'corelb_config_generation')).toBe(1);
    expect(metric(e, 'corelb_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(metric(e, 'corelb_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(metric(e, 'corelb_uptime_seconds')).toBeGreaterThan(0);

    const s = await admin.status();
    expect(s.generation).toBe(1);
    expect(s.workers.map((w) => w.id)).toEqual([0, 1]);
    expect(s.workers.reduce((n, w) => n + w.requests, 0)).toBe(35);
    expect(s.requestsBeforePool['4xx']).toBe(4);
    expect(s.uptimeSeconds).toBeGreaterThan(0);
    const [web, deadPool] = s.pools;
    expect(web!.name).toBe('web');
    expect(web!.backends.map((b) => [b.url, b.state, b.weight, b.inflight, b.requests['2xx'], b.latency.count])).toEqual(urls.map((u) => [u, 'up', 1, 0, 10, 10]));
    expect(deadPool!.backends[0]).toMatchObject({ url: dead, requests: { '5xx': 1 }, failures: { connect: 1 }, attempts: 1 });
    expect(s.latencyBucketsSeconds[0]).toBe(0.001);
    expect(web!.backends[0]!.latency.buckets).toHaveLength(s.latencyBucketsSeconds.length + 1);
  }, T);
});

describe('admin: actions', () => {
  it('drain stops new requests to a backend on every worker while its in-flight request finishes; enable brings it back', async () => {
    const os = await origins();
    const urls = os.map((o) => o.url);
    const { lb, admin } = await start({ workers: 2, pools: { web: urls } });

    // one slow request on each backend (three picks in a row cover the cycle once)
    const slow = [0, 1, 2].map(() => request(`${lb.url}/web/slow`));
    await Promise.all(os.map((o) => o.waitForRequests(1, 5000)));
    const r = await admin.post('/backends/drain', { pool: 'web', backend: urls[1] });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ ok: true, action: 'drain', backend: urls[1], pools: ['web'] });
    const during = await admin.metrics();
    expect(metric(during, 'corelb_backend_state', { pool: 'web', backend: urls[1]!, state: 'draining' })).toBe(1);
    expect(metric(during, 'corelb_backend_up', { pool: 'web', backend: urls[1]! })).toBe(0);
    expect(metric(during, 'corelb_backend_inflight', { pool: 'web', backend: urls[1]! })).toBe(1);
    const workersBefore = (await admin.status()).workers.map((w) => w.requests);

    let before = seen(os);
    await sequential(`${lb.url}/web/x`, 30);
    const drained = minus(seen(os), before);
    expect(drained[1], `drained backend got ${JSON.stringify(drained)}`).toBe(0);
    expect(drained[0]! + drained[2]!).toBe(30);
    // both workers served some of them
    const workersAfter = (await admin.status()).workers.map((w) => w.requests);
    expect(minus(workersAfter, workersBefore).every((n) => n > 0), JSON.stringify({ workersBefore, workersAfter })).toBe(true);

    // the in-flight request on the drained backend finished normally
    const answers = await Promise.all(slow);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => a.headers['x-origin']).sort()).toEqual(['o0', 'o1', 'o2']);

    const en = await admin.post('/backends/enable', { pool: 'web', backend: urls[1] });
    expect(en.status, en.text).toBe(200);
    expect((await admin.status()).pools[0]!.backends[1]!.state).toBe('up');
    before = seen(os);
    await sequential(`${lb.url}/web/x`, 30);
    expect(minus(seen(os), before)).toEqual([10, 10, 10]);

    const logs = lb.logs();
    expect(logs.some((l) => l.msg === 'admin: backend drained' && l.backend === urls[1] && JSON.stringify(l.pools) === '["web"]')).toBe(true);
    expect(logs.some((l) => l.msg === 'admin: backend enabled' && l.backend === urls[1])).toBe(true);
    expect(logs.some((l) => l.msg === 'backend state' && l.backend === urls[1] && l.to === 'draining' && l.reason === 'drained by the operator')).toBe(true);
  }, T);

  it('a weight change is a new generation: exact 3:1:1 over whole cycles on both workers; counters do not go down; a file reload resets it', async () => {
    const os = await origins();
    const urls = os.map((o) => o.url);
    // drain 1s: replaced generations are folded into the totals 6 s after they were replaced
    const spec: ConfigSpec = { workers: 2, timeouts: { drain: '1s' }, pools: { web: urls } };
    const { lb, admin } = await start(spec);
    await sequential(`${lb.url}/web/x`, 30);
    const m0 = await admin.waitForMetrics((m) => metricSum(m, 'corelb_requests_total') >= 30, '30 requests counted');

    const w = await admin.post(`/backends/weight?pool=web&backend=${encodeURIComponent(urls[0]!)}&weight=3`);
    expect(w.status, w.text).toBe(200);
    expect(w.json).toMatchObject({ ok: true, weight: 3, generation: 2, changed: [{ pool: 'web', from: 1, to: 3 }] });
    let before = seen(os);
    await sequential(`${lb.url}/web/x`, 25);
    expect(minus(seen(os), before)).toEqual([15, 5, 5]);
    const m1 = await admin.waitForMetrics((m) => metricSum(m, 'corelb_requests_total') >= 55, '55 requests counted');
    expect(metric(m1, 'corelb_config_generation')).toBe(2);
    expect(metric(m1, 'corelb_backend_weight', { pool: 'web', backend: urls[0]! })).toBe(3);
    expect(metric(m1, 'corelb_requests_total', { pool: 'web', backend: urls[0]!, code: '2xx' })).toBe(25);
    expect(metricSum(m1, 'corelb_worker_requests_total')).toBe(55);
    expectMonotonic(m0, m1);
    expect(lb.logs().some((l) => l.msg === 'admin: weight set' && l.backend === urls[0] && l.generation === 2)).toBe(true);

    // reload action, valid file (the file says weight 1 everywhere: the override is gone)
    const r = await admin.post('/reload');
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ ok: true, generation: 3, workers: 2 });
    before = seen(os);
    await sequential(`${lb.url}/web/x`, 30);
    expect(minus(seen(os), before)).toEqual([10, 10, 10]);
    const m2 = await admin.waitForMetrics((m) => metricSum(m, 'corelb_requests_total') >= 85, '85 requests counted');
    expect(metric(m2, 'corelb_backend_weight', { pool: 'web', backend: urls[0]! })).toBe(1);
    expect(metric(m2, 'corelb_config_last_reload_success')).toBe(1);
    expect(metric(m2, 'corelb_requests_total', { pool: 'web', backend: urls[0]!, code: '2xx' })).toBe(35);
    expectMonotonic(m1, m2);

    // reload action, invalid file: 422 with the located problem; the running config serves on
    writeFileSync(lb.configFile, toYaml(corelbConfig({ ...spec, port: lb.port })).replace('algorithm: round-robin', 'algorithm: fastest'));
    const bad = await admin.post('/reload');
    expect(bad.status, bad.text).toBe(422);
    expect(bad.json.ok).toBe(false);
    const problems = bad.json.problems as string[];
    expect(problems.some((p) => p.startsWith(`${lb.configFile}:`) && p.includes('pools.web.algorithm')), JSON.stringify(problems)).toBe(true);
    await sequential(`${lb.url}/web/x`, 3);
    const m3 = await admin.waitForMetrics((m) => metricSum(m, 'corelb_requests_total') >= 88, '88 requests counted');
    expect(metric(m3, 'corelb_config_last_reload_success')).toBe(0);
    expect(metric(m3, 'corelb_config_generation')).toBe(3);
    expect(metric(m3, 'corelb_config_last_reload_timestamp_seconds')).toBeGreaterThan(metric(m2, 'corelb_config_last_reload_timestamp_seconds'));
    expectMonotonic(m2, m3);
    expect((await admin.status()).lastReload).toMatchObject({ ok: false, problems });
    // folding replaced generations into the totals once their hold is over is Counters' own
    // business, driven by the clock it is given: test/unit/admin/counters.test.ts
  }, T);

  it('answers bad input with 400 / 404 naming the field, unknown routes 404, wrong methods 405, cross-origin POSTs 403', async () => {
    const os = await origins(2);
    const urls = os.map((o) => o.url);
    const { admin } = await start({ workers: 1, pools: { web: urls } });
    const cases: Array<[string, unknown, number, string | undefined]> = [
      ['/backends/drain', {}, 400, 'backend'],
      ['/backends/drain', { backend: 'ftp://x' }, 400, 'backend'],
      ['/backends/drain', { backend: 42 }, 400, 'backend'],
      ['/backends/drain', { backend: 'http://127.0.0.1:1' }, 404, 'backend'],
      ['/backends/drain', { pool: 'nope', backend: urls[0] }, 404, 'pool'],
      ['/backends/enable', { pool: 7, backend: urls[0] }, 400, 'pool'],
      ['/backends/weight', { backend: urls[0] }, 400, 'weight'],
      ['/backends/weight', { backend: urls[0], weight: 0 }, 400, 'weight'],
      ['/backends/weight', { backend: urls[0], weight: 1001 }, 400, 'weight'],
      ['/backends/weight', { backend: urls[0], weight: 2.5 }, 400, 'weight'],
      ['/backends/weight', { backend: urls[0], weight: '3x' }, 400, 'weight'],
    ];
    for (const [path, body, status, field] of cases) {
      const r = await admin.post(path, body);
      expect([r.status, r.json.field], `${path} ${JSON.stringify(body)}: ${r.text}`).toEqual([status, field]);
      expect(typeof r.json.error).toBe('string');
    }
    const notJson = await admin.post('/backends/drain', undefined, { body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect((await admin.get('/nope')).status).toBe(404);
    const wrong = await admin.get('/reload');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect((await admin.post('/metrics')).status).toBe(405);
    const cross = await admin.post('/backends/drain', { backend: urls[0] }, { headers: { origin: 'http://evil.example' } });
    expect(cross.status).toBe(403);
    expect((await admin.status()).pools[0]!.backends[0]!.state).toBe('up');
    // the trailing slash and case of a URL do not matter: it is normalised
    const ok = await admin.post('/backends/drain', { backend: urls[0]!.toUpperCase().replace('HTTP', 'http') + '/' });
    expect(ok.status, ok.text).toBe(200);
  }, T);
});

describe('admin: token', () => {
  it('with a token, every route answers 401 without it or with a wrong one, 200 with it; ?token= only for the dashboard and its events', async () => {
    const os = await origins(1);
    const { admin } = await start({ workers: 1, pools: { web: [os[0]!.url] } }, TOKEN);
    const anonymous = adminClient(admin.url);
    const wrong = adminClient(admin.url, TOKEN.slice(0, -1) + 'X');
    for (const client of [anonymous, wrong]) {
      for (const path of ['/metrics', '/status', '/', '/events', '/nope']) {
        const r = await client.get(path);
        expect(r.status, path).toBe(401);
        expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      }
      expect((await client.post('/reload')).status).toBe(401);
    }
    expect((await admin.get('/metrics')).status).toBe(200);
    expect((await admin.get('/status')).status).toBe(200);
    expect((await admin.get('/nope')).status).toBe(404);
    expect((await anonymous.get(`/?token=${TOKEN}`)).status).toBe(200);
    expect((await anonymous.get(`/metrics?token=${TOKEN}`)).status).toBe(401);
    expect((await anonymous.get('/', { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    // the event stream with ?token=: its first message is a status snapshot
    const first = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`no event within 5 s: ${text}`)), 5000);
      void request(`${admin.url}/events?token=${TOKEN}`, {
        timeoutMs: 10_000,
        onResponse: (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
          res.on('data', (d: Buffer) => {
            text += d.toString();
            const m = /^data: (.*)$/m.exec(text);
            if (m !== null) {
              clearTimeout(timer);
              res.destroy();
              resolve(m[1]!);
            }
          });
        },
      }).catch(() => undefined);
    });
    expect((JSON.parse(first) as { pools: { name: string }[] }).pools[0]!.name).toBe('web');
  }, T);

  it('a taken admin port is a startup error: exit 1 with a clear message', async () => {
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const os = await origins(1);
      const started = startCorelb(corelbConfig({ workers: 1, pools: { web: [os[0]!.url] }, admin: { port } }));
      await expect(started).rejects.toThrow(new RegExp(`admin server: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use[\\s\\S]*"code":1`));
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  }, T);
});
