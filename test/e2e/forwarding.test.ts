// Data path: methods, request target, hop-by-hop headers, X-Forwarded-*, X-Request-Id, Host,
// response headers, and routing by host / path prefix — against real origins and the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corelbConfig, startCorelb, type Corelb } from '../helpers/corelb.js';
import { echoOrigin, startRawHttpOrigin, type EchoBody, type Origin } from '../helpers/origins.js';
import { rawRequest } from '../helpers/raw.js';
import { request } from '../helpers/http.js';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { stopEverything } from '../helpers/cleanup.js';

const T = 60_000;
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

afterAll(stopEverything);

describe('forwarding', () => {
  let lb: Corelb;
  let web: Origin;
  let api: Origin;

  beforeAll(async () => {
    web = await echoOrigin('web');
    api = await echoOrigin('api');
    const hdr = await startRawHttpOrigin(({ socket }) => {
      const body = 'hello';
      socket.write(
        'HTTP/1.1 200 OK\r\n' +
          'Content-Type: text/plain\r\n' +
          'Set-Cookie: a=1; Path=/\r\n' +
          'Set-Cookie: b=2; HttpOnly\r\n' +
          'X-Custom: yes\r\n' +
          'Connection: keep-alive, X-Bar, Upgrade\r\n' +
          'X-Bar: hop-by-hop\r\n' +
          'Keep-Alive: timeout=60\r\n' +
          'Upgrade: h2c\r\n' +
          'Trailer: X-Checksum\r\n' +
          'Proxy-Connection: keep-alive\r\n' +
          `Content-Length: ${body.length}\r\n\r\n${body}`,
      );
    });
    lb = await startCorelb(
      corelbConfig({
        workers: 2,
        pools: { web: [web.url], api: [api.url], hdr: [hdr.url] },
        routes: [
          { host: 'api.example.com', path_prefix: '/v1', pool: 'api' },
          { path_prefix: '/resp-headers', pool: 'hdr' },
          { path_prefix: '/', pool: 'web' },
        ],
      }),
    );
  }, T);

  const echo = (text: string) => JSON.parse(text) as EchoBody;

  describe('methods', () => {
    const cases: { method: string; body?: string | Buffer }[] = [
      { method: 'GET' },
      { method: 'POST', body: 'hello post' },
      { method: 'PUT', body: Buffer.alloc(10_000, 7) },
      { method: 'PATCH', body: '{"a":1}' },
      { method: 'DELETE' },
      { method: 'OPTIONS' },
      { method: 'PROPFIND', body: '<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>' },
      { method: 'MKCOL' },
    ];
    it.each(cases)('$method is forwarded with its body', async ({ method, body }) => {
      const r = await request(`${lb.url}/m/${method.toLowerCase()}`, {
        method,
        body,
        headers: body !== undefined ? { 'content-type': 'application/octet-stream' } : {},
      });
      expect(r.status).toBe(200);
      const e = echo(r.text);
      expect(e.name).toBe('web');
      expect(e.method).toBe(method);
      expect(e.url).toBe(`/m/${method.toLowerCase()}`);
      const expected = body ?? '';
      expect(e.bodyLength).toBe(Buffer.byteLength(expected));
      expect(e.bodySha256).toBe(sha(expected));
    }, T);

    it('HEAD is forwarded and the response has no body but keeps Content-Length', async () => {
      const before = web.requests.length;
      const r = await request(`${lb.url}/m/head`, { method: 'HEAD' });
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(0);
      expect(Number(r.headers['content-length'])).toBeGreaterThan(0);
      const seen = web.requests.slice(before).find((s) => s.url === '/m/head');
      expect(seen?.method).toBe('HEAD');
      // the connection is still usable afterwards: a GET right after works
      const g = await request(`${lb.url}/m/after-head`);
      expect(echo(g.text).url).toBe('/m/after-head');
    }, T);
  });

  describe('request target is forwarded untouched', () => {
    const targets = [
      '/',
      '/a/b/c',
      '/search?a=1&a=2',
      '/p%20q/%2F%3F?x=%26y&z=%3D',
      '/a//b/./../c?q=%E2%9C%93',
      '/emoji/%F0%9F%98%80?k=v',
      '/semi;param=1/x?list=1,2,3&empty=&flag',
      '/x?',
      "/caf%C3%A9/~user/!$&'()*+,;=:@",
    ];
    it.each(targets)('%s', async (target) => {
      const r = await request(lb.url, { path: target });
      expect(r.status).toBe(200);
      expect(echo(r.text).url).toBe(target);
    }, T);
  });

  describe('hop-by-hop request headers are dropped, end-to-end ones kept', () => {
    const cases: { name: string; lines: string[]; absent: string[] }[] = [
      { name: 'header named in Connection', lines: ['Connection: X-Foo', 'X-Foo: secret'], absent: ['x-foo'] },
      {
        name: 'several headers named in Connection',
        lines: ['Connection: keep-alive, X-Foo, x-bar', 'X-Foo: 1', 'X-Bar: 2'],
        absent: ['x-foo', 'x-bar'],
      },
      {
        name: 'header named by a later Connection',
        lines: ['X-Foo: secret', 'X-Forwarded-For: 203.0.113.7', 'Connection: keep-alive, X-Foo'],
        absent: ['x-foo'],
      },
      { name: 'Connection: close', lines: ['Connection: close'], absent: [] },
      { name: 'Keep-Alive', lines: ['Connection: keep-alive', 'Keep-Alive: timeout=5, max=100'], absent: ['keep-alive'] },
      { name: 'TE', lines: ['TE: trailers'], absent: ['te'] },
      { name: 'Trailer', lines: ['Trailer: X-Checksum'], absent: ['trailer'] },
      { name: 'Upgrade', lines: ['Connection: Upgrade', 'Upgrade: foo/2'], absent: ['upgrade'] },
      { name: 'Proxy-Authorization', lines: ['Proxy-Authorization: Basic Zm9vOmJhcg=='], absent: ['proxy-authorization'] },
      { name: 'Proxy-Connection', lines: ['Proxy-Connection: keep-alive'], absent: ['proxy-connection'] },
    ];
    it.each(cases)('$name', async ({ lines, absent }) => {
      const req =
        'GET /hop HTTP/1.1\r\n' + `Host: hop.test\r\n` + lines.map((l) => `${l}\r\n`).join('') + 'X-End-To-End: kept\r\n\r\n';
      const r = await rawRequest(lb.port, req);
      expect(r, 'the proxy answered').not.toBeNull();
      expect(r!.status).toBe(200);
      const e = echo(r!.body.toString());
      expect(e.headers['x-end-to-end']).toBe('kept');
      for (const h of absent) expect(e.headers, `origin must not see ${h}`).not.toHaveProperty(h);
      // whatever Connection header the proxy sends to the origin is its own: no client tokens in it
      const conn = String(e.headers.connection ?? '').toLowerCase();
      for (const t of conn.split(',').map((x) => x.trim()).filter(Boolean)) expect(['keep-alive', 'close']).toContain(t);
      expect(e.headers['host']).toBe('hop.test');
    }, T);
  });

  describe('X-Forwarded-*, X-Request-Id and Host', () => {
    const xff: { name: string; incoming?: string; expected: string }[] = [
      { name: 'no incoming X-Forwarded-For', expected: '127.0.0.1' },
      { name: 'one incoming address', incoming: '203.0.113.7', expected: '203.0.113.7, 127.0.0.1' },
      { name: 'a list', incoming: '203.0.113.7, 198.51.100.2', expected: '203.0.113.7, 198.51.100.2, 127.0.0.1' },
    ];
    it.each(xff)('X-Forwarded-For: $name', async ({ incoming, expected }) => {
      const r = await request(`${lb.url}/xff`, { headers: incoming ? { 'x-forwarded-for': incoming } : {} });
      expect(r.status).toBe(200);
      const e = echo(r.text);
      expect(e.headers['x-forwarded-for']).toBe(expected);
    }, T);

    it('X-Forwarded-For of a client on an IPv6 listener (::1) is the RFC 5952 form', async () => {
      const v6 = await startCorelb(corelbConfig({ host: '::1', workers: 1, pools: { web: [web.url] } }));
      try {
        const text = await new Promise<string>((resolve, reject) => {
          const req = http.get({ host: '::1', port: v6.port, path: '/xff6' }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve(body));
          });
          req.on('error', reject);
        });
        expect(echo(text).headers['x-forwarded-for']).toBe('::1');
      } finally {
        await v6.stop();
      }
    }, T);

    it('forwarded_for: false adds no address; a client X-Forwarded-For passes unchanged', async () => {
      const off = await startCorelb({ ...corelbConfig({ workers: 1, pools: { web: [web.url] } }), forwarded_for: false });
      try {
        const plain = echo((await request(`${off.url}/xff-off`)).text);
        expect(plain.headers).not.toHaveProperty('x-forwarded-for');
        const kept = echo((await request(`${off.url}/xff-off`, { headers: { 'x-forwarded-for': '203.0.113.7' } })).text);
        expect(kept.headers['x-forwarded-for']).toBe('203.0.113.7');
        expect(kept.headers['x-forwarded-proto']).toBe('http'); // the other X-Forwarded-* stay
      } finally {
        await off.stop();
      }
    }, T);

    it('X-Forwarded-Proto is http, X-Forwarded-Host is the client Host, Host is kept', async () => {
      const r = await request(`${lb.url}/xfh`, { headers: { host: 'shop.example.test:8443' } });
      expect(r.status).toBe(200);
      const e = echo(r.text);
      expect(e.headers['x-forwarded-proto']).toBe('http');
      expect(e.headers['x-forwarded-host']).toBe('shop.example.test:8443');
      expect(e.headers.host).toBe('shop.example.test:8443');
    }, T);

    it('the default Host (the proxy address) is passed as-is, not rewritten to the backend', async () => {
      const r = await request(`${lb.url}/host`);
      const e = echo(r.text);
      expect(e.headers.host).toBe(`127.0.0.1:${lb.port}`);
      expect(e.headers.host).not.toBe(new URL(web.url).host);
    }, T);

    it('X-Request-Id is added when absent, unique per request', async () => {
      const a = echo((await request(`${lb.url}/rid`)).text);
      const b = echo((await request(`${lb.url}/rid`)).text);
      const ra = a.rawHeaders.filter((_, i, arr) => i % 2 === 0 && arr[i]!.toLowerCase() === 'x-request-id');
      expect(ra.length).toBe(1);
      expect(typeof a.headers['x-request-id']).toBe('string');
      expect((a.headers['x-request-id'] as string).length).toBeGreaterThan(0);
      expect(b.headers['x-request-id']).not.toBe(a.headers['x-request-id']);
    }, T);

    it('X-Request-Id is kept when present (one value, unchanged)', async () => {
      const e = echo((await request(`${lb.url}/rid`, { headers: { 'x-request-id': 'req-abc-123' } })).text);
      expect(e.headers['x-request-id']).toBe('req-abc-123');
      const n = e.rawHeaders.filter((_, i, arr) => i % 2 === 0 && arr[i]!.toLowerCase() === 'x-request-id').length;
      expect(n).toBe(1);
    }, T);
  });

  it('60 concurrent requests with distinct bodies each get their own answer', async () => {
    const n = 60;
    const bodies = Array.from({ length: n }, (_, i) => Buffer.from(`request-${i}-`.repeat(500 + i)));
    const replies = await Promise.all(
      bodies.map((body, i) => request(`${lb.url}/c/${i}?i=${i}`, { method: 'POST', body, timeoutMs: 60_000 })),
    );
    replies.forEach((r, i) => {
      expect(r.status).toBe(200);
      const e = echo(r.text);
      expect(e.url).toBe(`/c/${i}?i=${i}`);
      expect(e.bodyLength).toBe(bodies[i]!.length);
      expect(e.bodySha256).toBe(sha(bodies[i]!));
    });
  }, T);

  it('long request target and many / large request headers pass through', async () => {
    const longPath = '/long/' + 'a'.repeat(8000) + '?q=' + 'b'.repeat(2000);
    const headers: Record<string, string> = {};
    for (let i = 0; i < 60; i++) headers[`x-h-${i}`] = `v${i}`;
    headers['x-big'] = 'c'.repeat(16_000);
    headers['x-empty'] = '';
    const r = await request(lb.url, { path: longPath, headers });
    expect(r.status).toBe(200);
    const e = echo(r.text);
    expect(e.url).toBe(longPath);
    expect(e.headers['x-h-0']).toBe('v0');
    expect(e.headers['x-h-59']).toBe('v59');
    expect(e.headers['x-big']).toBe('c'.repeat(16_000));
    expect(e.headers['x-empty']).toBe('');
  }, T);

  it('a request with more headers than uWebSockets.js accepts (about 100) is refused with a 4xx, not forwarded', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 120; i++) headers[`x-many-${i}`] = `v${i}`;
    const before = web.requests.length;
    const r = await request(`${lb.url}/many-headers`, { headers }).catch((e: Error) => e);
    if (!(r instanceof Error)) {
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    expect(web.requests.slice(before).some((x) => x.url === '/many-headers')).toBe(false);
    expect((await request(`${lb.url}/after-many`)).status).toBe(200);
  }, T);

  describe('response headers', () => {
    it('come back from the origin: Set-Cookie kept separate, hop-by-hop dropped', async () => {
      const r = await request(`${lb.url}/resp-headers`);
      expect(r.status).toBe(200);
      expect(r.text).toBe('hello');
      expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
      expect(r.headers['x-custom']).toBe('yes');
      expect(r.headers['content-type']).toBe('text/plain');
      for (const h of ['x-bar', 'keep-alive', 'upgrade', 'trailer', 'proxy-connection']) {
        expect(r.headers, `client must not see ${h}`).not.toHaveProperty(h);
      }
      const conn = String(r.headers.connection ?? '').toLowerCase();
      expect(conn).not.toContain('x-bar');
      expect(conn).not.toContain('upgrade');
    }, T);

    it('the origin response status and custom headers pass through (echo origin x-origin)', async () => {
      const r = await request(`${lb.url}/anything`);
      expect(r.headers['x-origin']).toBe('web');
      expect(r.headers['content-type']).toBe('application/json');
    }, T);
  });
});

describe('routing by host and path prefix', () => {
  let lb: Corelb;
  beforeAll(async () => {
    const web = await echoOrigin('web');
    const api = await echoOrigin('api');
    lb = await startCorelb(
      corelbConfig({
        workers: 2,
        pools: { web: [web.url], api: [api.url] },
        routes: [
          { host: 'api.example.com', path_prefix: '/v1', pool: 'api' },
          { path_prefix: '/web', pool: 'web' },
        ],
      }),
    );
  }, T);

  const cases: { host: string; path: string; pool: string | 404 }[] = [
    { host: 'api.example.com', path: '/v1/users?id=3', pool: 'api' },
    { host: 'api.example.com:8080', path: '/v1/users', pool: 'api' },
    { host: 'API.Example.COM', path: '/v1', pool: 'api' },
    { host: 'api.example.com', path: '/web/page', pool: 'web' },
    { host: 'other.example.com', path: '/web/page', pool: 'web' },
    { host: 'other.example.com', path: '/v1/users', pool: 404 },
    { host: 'api.example.com', path: '/v2/users', pool: 404 },
    { host: 'api.example.com', path: '/', pool: 404 },
  ];
  it.each(cases)('Host $host $path -> $pool', async ({ host, path, pool }) => {
    const r = await request(lb.url, { path, headers: { host } });
    if (pool === 404) {
      expect(r.status).toBe(404);
      expect(r.headers['content-type'] ?? '').toMatch(/^text\/plain/);
      expect(r.text.length).toBeGreaterThan(0);
      expect(r.headers['x-origin']).toBeUndefined();
    } else {
      expect(r.status).toBe(200);
      const e = JSON.parse(r.text) as EchoBody;
      expect(e.name).toBe(pool);
      expect(e.url).toBe(path);
    }
  }, T);
});
