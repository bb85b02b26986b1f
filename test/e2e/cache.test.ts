// The shared response cache end to end: the real CLI with `workers: 2`, a counting origin on
// 127.0.0.1, every request on a new connection (so both workers serve, and a hit in one worker
// is an answer another stored). Fresh hits without a backend request; the storability rules
// (no-store, private, Set-Cookie, Authorization); Vary; Age; HEAD from a stored GET; 50
// concurrent misses giving one backend request; an answer over max_object served whole and not
// stored; conditional revalidation and 304 to a conditional client; stale-while-revalidate with
// one refresh; stale-if-error on 5xx and on a refused connection; eviction order under a small
// size; a reload keeping the cache.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin.js';
import { stopEverything } from '../helpers/cleanup.js';
import { freePort } from '../helpers/ports.js';
import { metric } from '../helpers/prom.js';
import { corelbConfig, startCorelb, toYaml, type Corelb } from '../helpers/corelb.js';
import { request, type Reply } from '../helpers/http.js';
import { startOrigin, type Origin } from '../helpers/origins.js';
import { sleep } from '../helpers/time.js';

afterAll(stopEverything);

// Short freshness lifetimes are 2 s, not 1: the origin's Date has whole seconds, and the apparent
// age it gives (RFC 9111 §4.2.3) may already be most of a second when the answer is stored.

/** Origin behaviour by path; every request is counted by path (query included). */
const hits = new Map<string, number>();
const count = (url: string): number => hits.get(url) ?? 0;
let failing = false;

/** Run `fn` while the origin fails: 500 for /sie and /mustrev, no answer at all for /hangs. */
async function whileFailing<T>(fn: () => Promise<T>): Promise<T> {
  failing = true;
  try {
    return await fn();
  } finally {
    failing = false;
  }
}
/** More than loopback's socket buffers hold (tcp_rmem and tcp_wmem at most 6 + 4 MiB): a paused reader backs the proxy up. */
const hugeBody = Buffer.alloc(16 * 1024 * 1024);
for (let i = 0; i < hugeBody.length; i++) hugeBody[i] = (i * 7 + (i >> 12)) & 255;
let version = 1;

function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '';
  hits.set(url, count(url) + 1);
  const full = url.split('?')[0]!;
  const path = full.startsWith('/down/') ? full.slice(5) : full;
  const send = (headers: Record<string, string | string[]>, body: string | Buffer, status = 200) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body);
  };
  if (path.startsWith('/fresh/')) return send({ 'cache-control': 'max-age=60' }, `fresh ${url}`);
  if (path === '/nostore') return send({ 'cache-control': 'no-store' }, 'nostore');
  if (path === '/private') return send({ 'cache-control': 'private, max-age=60' }, 'private');
  if (path === '/cookie') return send({ 'cache-control': 'max-age=60', 'set-cookie': 'a=1' }, 'cookie');
  if (path === '/nofreshness') return send({}, 'nofreshness');
  if (path === '/auth') return send({ 'cache-control': 'max-age=60' }, 'auth');
  if (path === '/auth-public') return send({ 'cache-control': 'public, max-age=60' }, 'auth-public');
  if (path === '/vary') return send({ 'cache-control': 'max-age=60', vary: 'Accept-Language' }, `lang=${req.headers['accept-language'] ?? ''}`);
  if (path === '/varystar') return send({ 'cache-control': 'max-age=60', vary: '*' }, 'varystar');
  if (path === '/aged') return send({ 'cache-control': 'max-age=600', age: '100' }, 'aged');
  if (path === '/slow') {
    setTimeout(() => send({ 'cache-control': 'max-age=60' }, 'slow'), 400);
    return;
  }
  if (path === '/big') return send({ 'cache-control': 'max-age=60' }, Buffer.alloc(300 * 1024, 98));
  if (path === '/range') return send({ 'cache-control': 'max-age=60' }, 'range');
  if (path === '/etag') {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=2', 'x-refreshed': String(count(url)) });
      res.end();
      return;
    }
    return send({ etag: '"v1"', 'cache-control': 'max-age=2' }, 'etag body');
  }
  if (path === '/lm') return send({ 'last-modified': 'Sun, 06 Nov 1994 08:49:37 GMT', 'cache-control': 'max-age=60' }, 'lm');
  if (path === '/swr') {
    setTimeout(() => send({ 'cache-control': 'max-age=2, stale-while-revalidate=30' }, `swr v${version}`), 400);
    return;
  }
  if (path === '/sie') {
    if (failing) return send({}, 'backend failure', 500);
    return send({ 'cache-control': 'max-age=2, stale-if-error=60' }, 'sie good');
  }
  if (path === '/mustrev') {
    if (failing) return send({}, 'backend failure', 500);
    return send({ 'cache-control': 'max-age=2, must-revalidate, stale-if-error=60' }, 'mustrev');
  }
  if (path === '/etag2') {
    if (req.headers['if-none-match'] === `"v${version}"`) {
      res.writeHead(304, { etag: `"v${version}"` });
      res.end();
      return;
    }
    return send({ etag: `"v${version}"`, 'cache-control': 'max-age=2' }, `etag2 v${version}`);
  }
  if (path === '/etagslow') {
    const h = { etag: '"s1"', 'cache-control': 'max-age=2' };
    if (req.headers['if-none-match'] === '"s1"') {
      setTimeout(() => (res.writeHead(304, h), res.end()), 300);
      return;
    }
    return send(h, 'etagslow body');
  }
  if (path === '/hangs') {
    if (failing) return; // never answers: the proxy's response timeout
    return send({ 'cache-control': 'max-age=2' }, 'hangs good');
  }
  if (path === '/short') return send({ 'cache-control': 'max-age=2' }, 'short');
  if (path === '/huge') return send({ 'cache-control': 'max-age=60' }, hugeBody);
  if (path === '/unsafe' || path === '/unsafe-fail') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send({}, 'changed', path === '/unsafe-fail' ? 500 : 200);
    return send({ 'cache-control': 'max-age=60' }, `${path} answer ${count(url)}`);
  }
  if (path.startsWith('/evict/')) return send({ 'cache-control': 'max-age=60' }, Buffer.alloc(60 * 1024, 101));
  send({}, 'other');
}

/** A cache config on top of the test defaults. */
function cacheConfig(
  pools: Record<string, string[]>,
  cache: Record<string, unknown>,
  routes?: { path_prefix: string; pool: string }[],
  adminPort?: number,
  response = '30s',
): Record<string, unknown> {
  const cfg = corelbConfig({ workers: 2, pools, routes, timeouts: { connect: '500ms', response }, log: { access: true }, ...(adminPort === undefined ? {} : { admin: { port: adminPort } }) });
  cfg.cache = cache;
  for (const p of Object.values(cfg.pools as Record<string, Record<string, unknown>>)) p.cache = true;
  return cfg;
}

const get = (lb: Corelb, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => request(`${lb.url}${path}`, { headers, method });

describe('cache', () => {
  let origin: Origin;
  let downOrigin: Origin;
  let lb: Corelb;
  let admin: AdminClient;
  let adminPort: number;

  beforeAll(async () => {
    origin = await startOrigin(answer);
    downOrigin = await startOrigin(answer);
    adminPort = await freePort();
    lb = await startCorelb(
      cacheConfig(
        { web: [origin.url], down: [downOrigin.url] },
        { size: '8mb', max_object: '256kb', stale_if_error: '0' },
        [
          { path_prefix: '/down/', pool: 'down' },
          { path_prefix: '/', pool: 'web' },
        ],
        adminPort,
      ),
    );
    admin = adminClient(`http://127.0.0.1:${adminPort}`);
  });

  it('200 GETs of a fresh object, each on a new connection to either worker, make one backend request', async () => {
    const first = await get(lb, '/fresh/a?x=1');
    expect(first.headers['cache-status']).toBe('corelb; fwd=miss; stored');
    for (let i = 0; i < 199; i += 20) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => get(lb, '/fresh/a?x=1')));
      for (const r of replies) {
        expect(r.status).toBe(200);
        expect(r.text).toBe('fresh /fresh/a?x=1');
        expect(r.headers['cache-status']).toBe('corelb; hit');
        expect(r.headers['content-type']).toBe('text/plain');
        expect(Number(r.headers.age)).toBeGreaterThanOrEqual(0);
      }
    }
    expect(count('/fresh/a?x=1')).toBe(1);
    // another query is another key
    await get(lb, '/fresh/a?x=2');
    expect(count('/fresh/a?x=2')).toBe(1);
  });

  it.each([
    ['/nostore', {}],
    ['/private', {}],
    ['/cookie', {}],
    ['/nofreshness', {}],
    ['/varystar', {}],
    ['/auth', { authorization: 'Bearer x' }],
  ])('%s is not stored', async (path, headers) => {
    const a = await get(lb, path, headers);
    const b = await get(lb, path, headers);
    expect(a.status).toBe(200);
    expect(b.headers['cache-status']).toBe('corelb; fwd=miss');
    expect(count(path)).toBe(2);
  });

  it('an answer to a request with Authorization is stored when it says public', async () => {
    await get(lb, '/auth-public', { authorization: 'Bearer x' });
    const b = await get(lb, '/auth-public');
    expect(b.headers['cache-status']).toBe('corelb; hit');
    expect(count('/auth-public')).toBe(1);
  });

  it('a request with no-store or a Range goes to the backend', async () => {
    await get(lb, '/range');
    const r = await get(lb, '/range', { range: 'bytes=0-1' });
    expect(r.headers['cache-status']).toBe('corelb; fwd=bypass');
    const n = await get(lb, '/range', { 'cache-control': 'no-store' });
    expect(n.headers['cache-status']).toBe('corelb; fwd=bypass');
    expect(count('/range')).toBe(3);
    expect((await get(lb, '/range')).headers['cache-status']).toBe('corelb; hit');
  });

  it('only-if-cached: 504 without a fresh stored answer, the answer with one', async () => {
    const none = await get(lb, '/fresh/oic', { 'cache-control': 'only-if-cached' });
    expect(none.status).toBe(504);
    expect(count('/fresh/oic')).toBe(0);
    await get(lb, '/fresh/oic');
    const r = await get(lb, '/fresh/oic', { 'cache-control': 'only-if-cached' });
    expect(r.status).toBe(200);
    expect(r.headers['cache-status']).toBe('corelb; hit');
    expect(count('/fresh/oic')).toBe(1);
  });

  it('max-stale and min-fresh in a request are honoured', async () => {
    await get(lb, '/short');
    expect((await get(lb, '/short', { 'cache-control': 'min-fresh=60' })).headers['cache-status']).toBe('corelb; fwd=stale; stored');
    await sleep(2100);
    const tolerant = await get(lb, '/short', { 'cache-control': 'max-stale=60' });
    expect(tolerant.headers['cache-status']).toBe('corelb; hit');
    expect(Number(tolerant.headers.age)).toBeGreaterThanOrEqual(2);
    expect(count('/short')).toBe(2);
    expect((await get(lb, '/short')).headers['cache-status']).toBe('corelb; fwd=stale; stored');
    expect(count('/short')).toBe(3);
  });

  it('Vary keeps the variants apart', async () => {
    const en = await get(lb, '/vary', { 'accept-language': 'en' });
    const fr = await get(lb, '/vary', { 'accept-language': 'fr' });
    expect(en.text).toBe('lang=en');
    expect(fr.text).toBe('lang=fr');
    for (let i = 0; i < 4; i++) {
      expect((await get(lb, '/vary', { 'accept-language': 'en' })).text).toBe('lang=en');
      expect((await get(lb, '/vary', { 'accept-language': 'fr' })).text).toBe('lang=fr');
    }
    expect(count('/vary')).toBe(2);
  });

  it('Age counts the backend Age and the time stored; HEAD is answered from the stored GET', async () => {
    await get(lb, '/aged');
    await sleep(2100);
    const r = await get(lb, '/aged');
    expect(r.headers['cache-status']).toBe('corelb; hit');
    expect(Number(r.headers.age)).toBeGreaterThanOrEqual(101);
    const head = await get(lb, '/aged', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('4');
    expect(head.body.length).toBe(0);
    expect(head.headers['cache-status']).toBe('corelb; hit');
    expect(count('/aged')).toBe(1);
  });

  it('50 concurrent misses for one key make one backend request', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, () => get(lb, '/slow')));
    for (const r of replies) expect(r.text).toBe('slow');
    expect(count('/slow')).toBe(1);
    expect(replies.filter((r) => r.headers['cache-status'] === 'corelb; hit').length).toBe(49);
  });

  it('an answer over max_object is served whole and not stored', async () => {
    const a = await get(lb, '/big');
    expect(a.body.length).toBe(300 * 1024);
    expect(a.body.every((c) => c === 98)).toBe(true);
    const b = await get(lb, '/big');
    expect(b.body.length).toBe(300 * 1024);
    expect(count('/big')).toBe(2);
  });

  it('a non-error answer to an unsafe method invalidates its target (RFC 9111 §4.4); an error answer does not', async () => {
    await get(lb, '/unsafe');
    expect((await get(lb, '/unsafe')).headers['cache-status']).toBe('corelb; hit');
    const post = await get(lb, '/unsafe', {}, 'POST');
    expect(post.status).toBe(200);
    const after = await get(lb, '/unsafe');
    expect(after.headers['cache-status']).toBe('corelb; fwd=miss; stored');
    expect(after.text).toBe('/unsafe answer 3');
    await get(lb, '/unsafe-fail');
    const failed = await get(lb, '/unsafe-fail', {}, 'DELETE');
    expect(failed.status).toBe(500);
    const kept = await get(lb, '/unsafe-fail');
    expect(kept.headers['cache-status']).toBe('corelb; hit');
    expect(kept.text).toBe('/unsafe-fail answer 1');
  });

  it('a hit to a client that asked to close says Connection: close', async () => {
    await get(lb, '/fresh/close');
    const r = await get(lb, '/fresh/close', { connection: 'close' });
    expect(r.headers['cache-status']).toBe('corelb; hit');
    expect(r.headers.connection).toBe('close');
  });

  it('a stale entry whose backend answers with a new version is replaced', async () => {
    version = 1;
    expect((await get(lb, '/etag2')).text).toBe('etag2 v1');
    await sleep(2100);
    version = 3;
    const r = await get(lb, '/etag2');
    expect(r.text).toBe('etag2 v3');
    expect(r.headers['cache-status']).toBe('corelb; fwd=stale; stored');
    const again = await get(lb, '/etag2');
    expect(again.text).toBe('etag2 v3');
    expect(again.headers['cache-status']).toBe('corelb; hit');
    expect(count('/etag2')).toBe(2);
  });

  it('a stale entry with an ETag is revalidated; a 304 refreshes it; a conditional client gets 304', async () => {
    const a = await get(lb, '/etag');
    expect(a.text).toBe('etag body');
    const c = await get(lb, '/etag', { 'if-none-match': '"v1"' });
    expect(c.status).toBe(304);
    expect(c.headers.etag).toBe('"v1"');
    expect(c.headers['cache-status']).toBe('corelb; hit');
    await sleep(2100);
    const before = origin.requests.length;
    const b = await get(lb, '/etag');
    expect(b.status).toBe(200);
    expect(b.text).toBe('etag body');
    expect(b.headers['cache-status']).toBe('corelb; fwd=stale; fwd-status=304');
    const sent = origin.requests.slice(before).filter((r) => r.url === '/etag');
    expect(sent.map((r) => r.headers['if-none-match'])).toEqual(['"v1"']);
    // the 304's fields are stored with the answer (RFC 9111 §4.3.4), which is fresh again
    expect(b.headers['x-refreshed']).toBe('2');
    expect(b.headers['content-type']).toBe('text/plain');
    const hit = await get(lb, '/etag');
    expect(hit.headers['cache-status']).toBe('corelb; hit');
    expect(hit.headers['x-refreshed']).toBe('2');
    expect(hit.text).toBe('etag body');
  });

  it('answers from the store (revalidated, stale-if-error) leave a kept-alive client connection in order', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const on = (path: string) => request(`${lb.url}${path}`, { agent });
      expect((await on('/etag')).text).toBe('etag body');
      await get(lb, '/sie');
      await sleep(2100);
      const revalidated = await on('/etag');
      expect(revalidated.headers['cache-status']).toBe('corelb; fwd=stale; fwd-status=304');
      expect(revalidated.text).toBe('etag body');
      const stale = await whileFailing(() => on('/sie'));
      expect(stale.headers['cache-status']).toBe('corelb; fwd=stale; fwd-status=500; detail=stale-if-error');
      for (const p of ['/fresh/ka1', '/fresh/ka1', '/etag']) {
        const r = await on(p);
        expect(r.status, p).toBe(200);
        expect(r.complete, p).toBe(true);
      }
      expect((await on('/fresh/ka1')).text).toBe('fresh /fresh/ka1');
    } finally {
      agent.destroy();
    }
  });

  it('concurrent requests for a stale entry make one revalidation', async () => {
    await get(lb, '/etagslow');
    await sleep(2100);
    const replies = await Promise.all(Array.from({ length: 20 }, () => get(lb, '/etagslow')));
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(r.text).toBe('etagslow body');
    }
    expect(count('/etagslow')).toBe(2);
    expect(replies.filter((r) => r.headers['cache-status'] === 'corelb; fwd=stale; fwd-status=304').length).toBe(1);
    expect(replies.filter((r) => r.headers['cache-status'] === 'corelb; hit').length).toBe(19);
  });

  it('If-Modified-Since is answered 304 from a fresh entry with Last-Modified', async () => {
    await get(lb, '/lm');
    const r = await get(lb, '/lm', { 'if-modified-since': 'Mon, 07 Nov 1994 08:49:37 GMT' });
    expect(r.status).toBe(304);
    const older = await get(lb, '/lm', { 'if-modified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' });
    expect(older.status).toBe(200);
    expect(older.text).toBe('lm');
    expect(count('/lm')).toBe(1);
  });

  it('stale-while-revalidate: stale hits are answered at once and one request refreshes the entry', async () => {
    version = 1;
    await get(lb, '/swr');
    await sleep(2100);
    version = 2;
    const replies = await Promise.all(Array.from({ length: 20 }, () => get(lb, '/swr')));
    for (const r of replies) {
      expect(r.text).toBe('swr v1');
      expect(r.headers['cache-status']).toBe('corelb; hit; detail=stale-while-revalidate');
    }
    await origin.waitForRequests(0);
    for (let i = 0; i < 50 && (await get(lb, '/swr')).text !== 'swr v2'; i++) await sleep(50);
    expect((await get(lb, '/swr')).text).toBe('swr v2');
    expect(count('/swr')).toBe(2);
  });

  it('stale-if-error: a 5xx is replaced by the stale entry; must-revalidate is not', async () => {
    await get(lb, '/sie');
    await get(lb, '/mustrev');
    await sleep(2100);
    await whileFailing(async () => {
      const r = await get(lb, '/sie');
      expect(r.status).toBe(200);
      expect(r.text).toBe('sie good');
      expect(r.headers['cache-status']).toBe('corelb; fwd=stale; fwd-status=500; detail=stale-if-error');
      const m = await get(lb, '/mustrev');
      expect(m.status).toBe(500);
    });
  });

  it('stale-if-error: a backend that refuses connections is replaced by the stale entry', async () => {
    const a = await get(lb, '/down/sie');
    expect(a.text).toBe('sie good');
    await downOrigin.close();
    await sleep(2100);
    const r = await get(lb, '/down/sie');
    expect(r.status).toBe(200);
    expect(r.text).toBe('sie good');
    expect(r.headers['cache-status']).toBe('corelb; fwd=stale; detail=stale-if-error');
    const other = await get(lb, '/down/fresh/never-stored');
    expect(other.status).toBe(502);
  });

  it('purges by url (every variant) and by prefix through the admin API', async () => {
    await get(lb, '/fresh/p/one');
    await get(lb, '/fresh/p/two?q=1');
    await get(lb, '/vary', { 'accept-language': 'de' });
    const byUrl = await admin.post('/cache/purge?url=' + encodeURIComponent('/vary'));
    expect(byUrl.status).toBe(200);
    expect(byUrl.json).toEqual({ ok: true, purged: 3 }); // en, fr, de
    expect((await get(lb, '/vary', { 'accept-language': 'en' })).headers['cache-status']).toBe('corelb; fwd=miss; stored');
    const byPrefix = await admin.post('/cache/purge', { prefix: '/fresh/p/' });
    expect(byPrefix.json).toEqual({ ok: true, purged: 2 });
    expect((await get(lb, '/fresh/p/two?q=1')).headers['cache-status']).toBe('corelb; fwd=miss; stored');
    expect((await get(lb, '/fresh/a?x=1')).headers['cache-status']).toBe('corelb; hit');
    const bad = await admin.post('/cache/purge', { url: '/a', prefix: '/b' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('exactly one of url');
  });

  it('GET /cache, the metrics, /status (the dashboard) and the access log show the cache', async () => {
    const c = await admin.get('/cache');
    expect(c.status).toBe(200);
    const figures = JSON.parse(c.text) as { entries: number; bytes: number; sizeBytes: number; indexBytes: number; hitRatio: number; requests: { pool: string; result: string; count: number }[] };
    expect(figures.entries).toBeGreaterThan(10);
    expect(figures.bytes).toBeGreaterThan(0);
    expect(figures.sizeBytes).toBe(8 * 1024 * 1024);
    expect(figures.indexBytes).toBeGreaterThan(0);
    expect(figures.indexBytes).toBeLessThan(figures.sizeBytes * 0.06);
    expect(figures.hitRatio).toBeGreaterThan(0.5);
    const webHits = figures.requests.find((r) => r.pool === 'web' && r.result === 'hit')!.count;
    expect(webHits).toBeGreaterThan(200);
    const m = await admin.metrics();
    expect(metric(m, 'corelb_cache_requests_total', { pool: 'web', result: 'hit' })).toBe(webHits);
    expect(metric(m, 'corelb_cache_requests_total', { pool: 'web', result: 'revalidated' })).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'corelb_cache_requests_total', { pool: 'web', result: 'bypass' })).toBeGreaterThanOrEqual(2);
    expect(metric(m, 'corelb_cache_entries', {})).toBe(figures.entries);
    expect(metric(m, 'corelb_cache_bytes', {})).toBe(figures.bytes);
    expect(metric(m, 'corelb_cache_evictions_total', {})).toBe(0);
    const status = JSON.parse((await admin.get('/status')).text) as { cache: { hitRatio: number } };
    expect(status.cache.hitRatio).toBe(figures.hitRatio);
    expect((await admin.get('/')).text).toContain('id="cache-hit"');
    await get(lb, '/fresh/logged');
    await get(lb, '/fresh/logged');
    await get(lb, '/fresh/logged', { 'x-request-id': 'hit-id-1' });
    const lines = await lb.waitForLog((l) => l.msg === 'access' && l.path === '/fresh/logged' && l.cache === 'hit');
    expect(lines.status).toBe(200);
    expect(typeof lines.reqId === 'string' && lines.reqId.length > 0).toBe(true);
    await lb.waitForLog((l) => l.msg === 'access' && l.reqId === 'hit-id-1' && l.cache === 'hit');
    // access lines are written in batches per worker: the miss's may come after the hit's
    const miss = await lb.waitForLog((l) => l.msg === 'access' && l.path === '/fresh/logged' && l.cache === 'miss');
    expect(miss.backend).toBe(origin.url);
  });

  it('a reload keeps the cache, and the result counters of each pool (pools reordered)', async () => {
    await get(lb, '/fresh/reload');
    const hitsBefore = metric(await admin.metrics(), 'corelb_cache_requests_total', { pool: 'web', result: 'hit' });
    const from = lb.logs().length;
    writeFileSync(
      lb.configFile,
      toYaml({
        ...cacheConfig({ down: [origin.url], web: [origin.url] }, { size: '8mb', max_object: '256kb' }, [
          { path_prefix: '/down/', pool: 'down' },
          { path_prefix: '/', pool: 'web' },
        ], adminPort),
        listen: { host: '127.0.0.1', port: lb.port },
      }),
    );
    process.kill(lb.pid, 'SIGHUP');
    await lb.waitForLogAfter(from, (l) => l.msg === 'reloaded', 10_000);
    const r = await get(lb, '/fresh/reload');
    expect(r.headers['cache-status']).toBe('corelb; hit');
    expect(count('/fresh/reload')).toBe(1);
    const m = await admin.metrics();
    expect(metric(m, 'corelb_cache_requests_total', { pool: 'web', result: 'hit' })).toBe(hitsBefore + 1);
    expect(metric(m, 'corelb_cache_requests_total', { pool: 'down', result: 'hit' })).toBe(0);
  });
});

describe('cache and a slow client', () => {
  it('a hit larger than the socket buffers is sent whole to a slow client, from shared memory', async () => {
    const origin = await startOrigin(answer);
    const lb = await startCorelb(cacheConfig({ web: [origin.url] }, { size: '64mb', max_object: '32mb' }));
    const first = await get(lb, '/huge');
    expect(first.headers['cache-status']).toBe('corelb; fwd=miss; stored');
    const slow = await request(`${lb.url}/huge`, {
      timeoutMs: 30_000,
      onResponse: (res) => {
        res.pause();
        setTimeout(() => res.resume(), 500);
      },
    });
    expect(slow.headers['cache-status']).toBe('corelb; hit');
    expect(slow.body.length).toBe(hugeBody.length);
    expect(slow.body.equals(hugeBody)).toBe(true);
    expect(count('/huge')).toBe(1);
  });
});

describe('cache and a backend that stops answering', () => {
  it('stale-if-error (cache.stale_if_error): a response timeout is replaced by the stale entry', async () => {
    const origin = await startOrigin(answer);
    const lb = await startCorelb(cacheConfig({ web: [origin.url] }, { size: '1mb', stale_if_error: '1m' }, undefined, undefined, '600ms'));
    expect((await get(lb, '/hangs')).text).toBe('hangs good');
    await sleep(2100);
    await whileFailing(async () => {
      const r = await get(lb, '/hangs');
      expect(r.status).toBe(200);
      expect(r.text).toBe('hangs good');
      expect(r.headers['cache-status']).toBe('corelb; fwd=stale; detail=stale-if-error');
      const none = await get(lb, '/hangs?never=stored');
      expect(none.status).toBe(504);
    });
  });
});

describe('cache.stale_while_revalidate', () => {
  it('an answer that says nothing of it is served stale while one request refreshes it', async () => {
    const origin = await startOrigin(answer);
    const lb = await startCorelb(cacheConfig({ web: [origin.url] }, { size: '1mb', stale_while_revalidate: '30s' }));
    await get(lb, '/short?default-swr');
    await sleep(2100);
    // (one refresh for many stale hits: the stale-while-revalidate test above, whose origin is slower)
    const stale = await get(lb, '/short?default-swr');
    expect(stale.headers['cache-status']).toBe('corelb; hit; detail=stale-while-revalidate');
    for (let i = 0; i < 50 && count('/short?default-swr') < 2; i++) await sleep(50);
    await sleep(200);
    expect(count('/short?default-swr')).toBe(2);
    expect((await get(lb, '/short?default-swr')).headers['cache-status']).toBe('corelb; hit');
  });
});

describe('cache on a route', () => {
  it('cache: true on a route caches that route only', async () => {
    const origin = await startOrigin(answer);
    const cfg = corelbConfig({ workers: 2, pools: { web: [origin.url] }, routes: [{ path_prefix: '/fresh/cached', pool: 'web' }, { path_prefix: '/', pool: 'web' }] });
    cfg.cache = { size: '1mb' };
    (cfg.routes as Record<string, unknown>[])[0]!.cache = true;
    const lb = await startCorelb(cfg);
    for (let i = 0; i < 3; i++) {
      await get(lb, '/fresh/cached/x');
      const other = await get(lb, '/fresh/other');
      expect(other.headers['cache-status']).toBeUndefined();
    }
    expect((await get(lb, '/fresh/cached/x')).headers['cache-status']).toBe('corelb; hit');
    expect(count('/fresh/cached/x')).toBe(1);
    expect(count('/fresh/other')).toBe(3);
  });
});

describe('cache eviction', () => {
  it('evicts the least recently used answer when the store is full', async () => {
    const origin = await startOrigin(answer);
    // 256kb: four 60 KiB answers (16 blocks each) fill it
    const lb = await startCorelb(cacheConfig({ web: [origin.url] }, { size: '256kb', max_object: '100kb' }));
    for (const k of ['a', 'b', 'c', 'd']) {
      expect((await get(lb, `/evict/${k}`)).headers['cache-status']).toBe('corelb; fwd=miss; stored');
      await sleep(10);
    }
    expect((await get(lb, '/evict/a')).headers['cache-status']).toBe('corelb; hit');
    await sleep(10);
    await get(lb, '/evict/e'); // evicts b, the least recently used
    for (const k of ['a', 'c', 'd', 'e']) expect((await get(lb, `/evict/${k}`)).headers['cache-status'], k).toBe('corelb; hit');
    expect((await get(lb, '/evict/b')).headers['cache-status']).toBe('corelb; fwd=miss; stored');
    expect(count('/evict/b')).toBe(2);
    expect(count('/evict/a')).toBe(1);
  });
});
