// The admin health endpoints of a real corelb with an admin token: /healthz answers 200 without
// the token; /readyz answers 200 while every pool has an available backend and 503 naming the
// pools that have none (one drained by the admin, one whose only backend fails its active
// checks), and 200 again once they are back; both answer an HTTP/1.0 request (a load balancer's
// default check) on a raw socket; every other route still asks for the token.
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin.js';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';
import { eventually, startOrigin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { readHead, SocketReader } from '../helpers/raw.js';

const TOKEN = 'health-token-0123456789abcdef';

afterEach(stopEverything);
afterAll(stopEverything);

/** One HTTP/1.0 GET on a raw socket: the status line and the body (the server closes). */
async function http10(port: number, path: string): Promise<{ startLine: string; body: string }> {
  const socket = net.connect(port, '127.0.0.1');
  const reader = new SocketReader(socket);
  socket.write(`GET ${path} HTTP/1.0\r\n\r\n`);
  const head = await readHead(reader);
  const body = (await reader.readAll()).toString('utf8');
  socket.destroy();
  if (head === null) throw new Error(`no answer to HTTP/1.0 GET ${path}`);
  return { startLine: head.startLine, body };
}

describe('admin /healthz and /readyz', () => {
  it('answer without a token, 503 names the pools without an available backend, HTTP/1.0 too', async () => {
    const web = await startOrigin((_req, res) => res.end('web'));
    let apiHealthy = true;
    const api = await startOrigin((req, res) => {
      res.writeHead(req.url === '/healthz' && !apiHealthy ? 500 : 200);
      res.end('api');
    });
    const adminPort = await freePort();
    await startCorelb(
      corelbConfig({
        workers: 2,
        pools: { web: [web.url], api: { backends: [api.url], health: { path: '/healthz', interval: '200ms', timeout: '200ms', rise: 1, fall: 1 } } },
        routes: [
          { path_prefix: '/api', pool: 'api' },
          { path_prefix: '/', pool: 'web' },
        ],
        admin: { port: adminPort, token: TOKEN },
      }),
    );
    const base = `http://127.0.0.1:${adminPort}`;
    const open = adminClient(base); // no token
    const admin = adminClient(base, TOKEN);

    const h = await open.get('/healthz');
    expect([h.status, h.text]).toEqual([200, 'ok\n']);
    await eventually(async () => (await open.get('/readyz')).status === 200, 10_000, '/readyz 200 once the checks ran');
    expect((await open.get('/readyz')).text).toBe('ready\n');
    expect((await open.get('/status')).status).toBe(401);
    expect((await open.get('/metrics')).status).toBe(401);

    const h10 = await http10(adminPort, '/healthz');
    expect(h10.startLine).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(h10.body).toBe('ok\n');
    expect((await http10(adminPort, '/readyz')).startLine).toMatch(/^HTTP\/1\.[01] 200 /);

    // the web pool's only backend drained by the operator
    expect((await admin.post('/backends/drain', { pool: 'web', backend: web.url })).status).toBe(200);
    await eventually(async () => (await open.get('/readyz')).status === 503, 5000, '/readyz 503 after the drain');
    expect((await open.get('/readyz')).text).toBe('not ready: pool web has no available backend\n');
    const r10 = await http10(adminPort, '/readyz');
    expect(r10.startLine).toMatch(/^HTTP\/1\.[01] 503 /);
    expect(r10.body).toContain('pool web');
    expect((await open.get('/healthz')).status).toBe(200); // up, though not ready

    // the api pool's only backend fails its active checks as well: both pools named
    apiHealthy = false;
    await eventually(async () => (await open.get('/readyz')).text.includes('pool api'), 10_000, '/readyz naming api');
    const both = await open.get('/readyz');
    expect(both.status).toBe(503);
    expect(both.text).toBe('not ready: pool web has no available backend\nnot ready: pool api has no available backend\n');

    apiHealthy = true;
    expect((await admin.post('/backends/enable', { pool: 'web', backend: web.url })).status).toBe(200);
    await eventually(async () => (await open.get('/readyz')).status === 200, 10_000, '/readyz 200 again');
    expect((await request(`${base}/readyz`, { method: 'HEAD' })).status).toBe(200);
  });
});
