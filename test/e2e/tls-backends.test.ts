// End to end: https:// backends through the real CLI, against node:https servers with
// certificates made at test time by openssl: verified against the pool's CA (by servername, and
// by the URL's IP), an unknown CA or a wrong name is a 502 with CLB_ERR_TLS and its reason in the
// log (and a connect failure for passive checks), `verify: false` works and is warned about,
// mTLS to a backend that requires a client certificate, keep-alive reuse, TLS session
// resumption on new connections, and health probes with the pool's TLS settings.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeLeaf, type CertificateAuthority, type Leaf } from '../helpers/certs.js';
import { stopEverything } from '../helpers/cleanup.js';
import { corelbConfig, startCorelb, type Corelb, type PoolSpec } from '../helpers/corelb.js';
import { request } from '../helpers/http.js';

const T = 30_000;

interface TlsOrigin {
  url: string;
  port: number;
  /** TLS connections accepted (secureConnection events). */
  connections: number;
  /** Per request: the client certificate's CN ('' when none) and whether the session was resumed. */
  seen: { clientCn: string; resumed: boolean; path: string }[];
  close(): Promise<void>;
}

const origins: TlsOrigin[] = [];

async function startTlsOrigin(leaf: Leaf, opts: { requireClientCertFrom?: CertificateAuthority; close?: boolean } = {}): Promise<TlsOrigin> {
  const server = https.createServer({
    cert: readFileSync(leaf.cert),
    key: readFileSync(leaf.key),
    ...(opts.requireClientCertFrom !== undefined && { requestCert: true, rejectUnauthorized: true, ca: readFileSync(opts.requireClientCertFrom.cert) }),
  });
  const o: TlsOrigin = { url: '', port: 0, connections: 0, seen: [], close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
  server.on('secureConnection', () => o.connections++);
  server.on('request', (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    o.seen.push({ clientCn: String(peer?.subject?.CN ?? ''), resumed: socket.isSessionReused(), path: req.url ?? '' });
    res.setHeader('content-type', 'text/plain');
    if (opts.close === true) res.setHeader('connection', 'close');
    res.end(`tls ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  o.port = (server.address() as net.AddressInfo).port;
  origins.push(o);
  return o;
}

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let backendLeaf: Leaf;
let strangerLeaf: Leaf;
let clientLeaf: Leaf;

beforeAll(() => {
  ca = makeCa('backend CA');
  otherCa = makeCa('unknown CA');
  backendLeaf = makeLeaf(ca, 'backend', { names: ['backend.test'], ips: ['127.0.0.1'] });
  strangerLeaf = makeLeaf(otherCa, 'stranger', { names: ['backend.test'], ips: ['127.0.0.1'] });
  clientLeaf = makeLeaf(ca, 'corelb-client', { names: ['corelb.client.test'] });
});

afterAll(async () => {
  await stopEverything();
  for (const o of origins) await o.close();
});

async function proxyTo(url: string, pool: Partial<PoolSpec> & { tls?: Record<string, unknown> }): Promise<Corelb> {
  const cfg = corelbConfig({ workers: 1, pools: { web: { backends: [url], retries: 0, ...pool } } });
  const pools = cfg.pools as Record<string, Record<string, unknown>>;
  if (pool.tls !== undefined) pools.web!.tls = pool.tls;
  return startCorelb(cfg);
}

describe('https backends', () => {
  it('verified against the pool CA by servername, and by the IP of the URL; keep-alive reuses one TLS connection', async () => {
    const o = await startTlsOrigin(backendLeaf);
    const byName = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { ca: ca.cert, servername: 'backend.test' } });
    for (let i = 0; i < 4; i++) {
      const r = await request(`${byName.url}/n${i}`);
      expect(r.status).toBe(200);
      expect(r.text).toBe(`tls /n${i}`);
    }
    expect(o.connections).toBe(1); // four requests, one kept-alive TLS connection (workers: 1)
    await byName.stop();
    const byIp = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { ca: ca.cert } });
    expect((await request(`${byIp.url}/ip`)).text).toBe('tls /ip');
    await byIp.stop();
  }, T);

  it('a certificate from an unknown CA: 502, CLB_ERR_TLS with the reason in the log, a connect failure for passive checks', async () => {
    const o = await startTlsOrigin(strangerLeaf);
    const good = await startTlsOrigin(backendLeaf);
    const bad = `https://127.0.0.1:${o.port}`;
    const cfg = corelbConfig({ workers: 1, pools: { web: { backends: [bad, `https://127.0.0.1:${good.port}`], retries: 0, passive: { failures: 2, window: '10s', eject: '30s' } } } });
    (cfg.pools as Record<string, Record<string, unknown>>).web!.tls = { ca: ca.cert, servername: 'backend.test' };
    const lb = await startCorelb(cfg);
    // passive checks take their first sample on the primary's first tick (100 ms): failures
    // before it are the baseline, not counted
    await new Promise((r) => setTimeout(r, 300));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(`${lb.url}/r${i}`)).status);
    expect(statuses.sort()).toEqual([200, 200, 502, 502]); // round-robin, no retries
    const line = await lb.waitForLog((l) => l.code === 'CLB_ERR_TLS');
    expect(line.status).toBe(502);
    expect(line.backend).toBe(bad);
    expect(String(line.msg)).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed: .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify)/);
    expect(o.seen).toHaveLength(0); // nothing was sent
    // two connect failures within the window: ejected by the passive checks
    const ejected = await lb.waitForLog((l) => l.msg === 'backend state' && l.to === 'down');
    expect(ejected.backend).toBe(bad);
    expect(String(ejected.reason)).toContain('passive check: 2 failed request(s)');
    await lb.stop();
  }, T);

  it('a certificate for another name: 502 CLB_ERR_TLS naming the mismatch', async () => {
    const o = await startTlsOrigin(backendLeaf);
    const lb = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { ca: ca.cert, servername: 'other.test' } });
    expect((await request(`${lb.url}/x`)).status).toBe(502);
    const line = await lb.waitForLog((l) => l.code === 'CLB_ERR_TLS');
    expect(String(line.msg)).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
    await lb.stop();
  }, T);

  it('verify: false reaches a backend whose certificate does not verify, and is warned about at start', async () => {
    const o = await startTlsOrigin(strangerLeaf);
    const lb = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { verify: false } });
    expect((await request(`${lb.url}/unverified`)).text).toBe('tls /unverified');
    const warning = lb.logs().find((l) => l.field === 'pools.web.tls.verify');
    expect(String(warning?.msg)).toContain('not checked');
    await lb.stop();
  }, T);

  it('mTLS: a backend that requires a client certificate gets corelb\'s (cert/key); without one, no answer', async () => {
    const o = await startTlsOrigin(backendLeaf, { requireClientCertFrom: ca });
    const lb = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { ca: ca.cert, servername: 'backend.test', cert: clientLeaf.cert, key: clientLeaf.key } });
    expect((await request(`${lb.url}/mtls`)).text).toBe('tls /mtls');
    expect(o.seen.at(-1)?.clientCn).toBe('corelb.client.test');
    await lb.stop();
    const without = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { ca: ca.cert, servername: 'backend.test' } });
    expect((await request(`${without.url}/no-cert`)).status).toBe(502);
    expect(o.seen.at(-1)?.path).toBe('/mtls');
    await without.stop();
  }, T);

  it('a new connection resumes the TLS session of an earlier one', async () => {
    const o = await startTlsOrigin(backendLeaf, { close: true }); // every answer closes its connection
    const lb = await proxyTo(`https://127.0.0.1:${o.port}`, { tls: { ca: ca.cert, servername: 'backend.test' } });
    for (let i = 0; i < 3; i++) expect((await request(`${lb.url}/r${i}`)).status).toBe(200);
    expect(o.connections).toBe(3);
    expect(o.seen.map((s) => s.resumed)).toEqual([false, true, true]);
    await lb.stop();
  }, T);

  it('health probes use the pool TLS settings: up with its CA, down with the reason when the certificate does not verify', async () => {
    const good = await startTlsOrigin(backendLeaf);
    const bad = await startTlsOrigin(strangerLeaf);
    const cfg = corelbConfig({
      workers: 1,
      pools: { web: { backends: [`https://127.0.0.1:${good.port}`, `https://127.0.0.1:${bad.port}`], health: { path: '/health', interval: '200ms', timeout: '150ms', rise: 1, fall: 1 } } },
    });
    (cfg.pools as Record<string, Record<string, unknown>>).web!.tls = { ca: ca.cert, servername: 'backend.test' };
    const lb = await startCorelb(cfg);
    const down = await lb.waitForLog((l) => l.msg === 'backend state' && l.to === 'down');
    expect(down.backend).toBe(`https://127.0.0.1:${bad.port}`);
    expect(String(down.reason)).toMatch(/active check failed 1 time\(s\) in a row: tls .*(UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify)/);
    await new Promise((r) => setTimeout(r, 500));
    expect(good.seen.some((s) => s.path === '/health')).toBe(true);
    expect(lb.logs().some((l) => l.msg === 'backend state' && l.backend === `https://127.0.0.1:${good.port}` && l.to === 'down')).toBe(false);
    await lb.stop();
  }, T);
});
