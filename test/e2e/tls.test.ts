// End to end: TLS listeners through the real CLI, with certificates made at test time by openssl
// (a throwaway CA, leaf certificates for two names and a wildcard): HTTPS to the backend, SNI
// picking the certificate, the default certificate for no or an unknown name, HSTS,
// X-Forwarded-Proto / -Port as the backend sees them, a plain and a TLS listener side by side,
// min_version 1.3 refusing TLS 1.2, keep-alive over TLS, a reload that re-reads the certificate
// files (new connections get the new certificate, an open one carries on), and bad certificate
// files reported with their line by `corelb check` and by `corelb start`.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeLeaf, type CertificateAuthority, type Leaf } from '../helpers/certs.js';
import { stopEverything } from '../helpers/cleanup.js';
import { CLI, REPO_ROOT, corelbConfig, startCorelb, type Corelb } from '../helpers/corelb.js';
import { closeAllOrigins, echoOrigin, type EchoBody, type Origin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';

const T = 30_000;

interface TlsReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The CN of the certificate the proxy presented. */
  cn: string;
  protocol: string | null;
  /** The client side's port: the same for requests that shared a connection. */
  localPort: number;
  /** SHA-256 fingerprint of the certificate presented. */
  fingerprint: string;
}

/** One HTTPS request on a fresh connection (or on `agent`'s), SNI `servername` (none for an IP). */
function get(port: number, opts: { servername?: string; path?: string; headers?: http.OutgoingHttpHeaders; ca?: string | null; maxVersion?: 'TLSv1.2' | 'TLSv1.3'; agent?: https.Agent } = {}): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        servername: opts.servername ?? '',
        headers: { host: opts.servername ?? `127.0.0.1:${port}`, ...opts.headers },
        // the name check is the test's: the CN tells which certificate was presented
        ca: opts.ca ?? undefined,
        rejectUnauthorized: opts.ca !== null && opts.ca !== undefined,
        checkServerIdentity: () => undefined,
        maxVersion: opts.maxVersion,
        agent: opts.agent ?? false,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const peer = socket.getPeerCertificate();
        const cn = String(peer.subject?.CN ?? '');
        const fingerprint = peer.fingerprint256;
        const protocol = socket.getProtocol();
        const localPort = socket.localPort ?? 0;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, cn, protocol, localPort, fingerprint }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

let ca: CertificateAuthority;
let site: Leaf;
let api: Leaf;
let wild: Leaf;
let origin: Origin;
let lb: Corelb;
let tlsPort: number;
let plainPort: number;
let strictPort: number;
let redirectPort: number;
let redirect443Port: number;
let adminPort: number;
let webroot: string;
const caPem = (): string => spawnSync('cat', [ca.cert], { encoding: 'utf8' }).stdout;

beforeAll(async () => {
  ca = makeCa();
  site = makeLeaf(ca, 'site', { names: ['site.test', 'www.site.test'] });
  api = makeLeaf(ca, 'api', { names: ['api.test'] });
  wild = makeLeaf(ca, 'wild', { names: ['*.apps.test'] });
  origin = await echoOrigin('web');
  // freePort closes its probe at once, so two calls can name the same port: take distinct ones
  const ports = new Set<number>();
  while (ports.size < 6) ports.add(await freePort());
  [tlsPort, plainPort, strictPort, redirectPort, redirect443Port, adminPort] = [...ports] as [number, number, number, number, number, number];
  webroot = mkdtempSync(join(tmpdir(), 'corelb-webroot-'));
  mkdirSync(join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
  writeFileSync(join(webroot, '.well-known', 'acme-challenge', 'tok-EN_123'), 'tok-EN_123.thumbprint');
  const certificates = [site, api, wild].map((l) => ({ cert: l.cert, key: l.key }));
  lb = await startCorelb({
    ...corelbConfig({ workers: 2, pools: { web: [origin.url] }, admin: { port: adminPort } }),
    listen: [
      { port: tlsPort, tls: { certificates, hsts: '1y' } },
      { port: plainPort },
      { port: strictPort, tls: { certificates: certificates.slice(0, 1), min_version: '1.3' } },
      { port: redirectPort, redirect_https: tlsPort, acme_webroot: webroot },
      { port: redirect443Port, redirect_https: true },
    ],
  });
}, 60_000);

afterAll(async () => {
  await stopEverything();
  await closeAllOrigins();
});

describe('TLS listeners', () => {
  it('proxies HTTPS to the backend; the backend sees X-Forwarded-Proto https and X-Forwarded-Port; HSTS on the answer', async () => {
    const r = await get(tlsPort, { servername: 'site.test', path: '/hello?x=1', ca: caPem() });
    expect(r.status).toBe(200);
    expect(r.cn).toBe('site.test');
    expect(r.headers['strict-transport-security']).toBe('max-age=31536000');
    const e = JSON.parse(r.text) as EchoBody;
    expect(e.url).toBe('/hello?x=1');
    expect(e.headers['x-forwarded-proto']).toBe('https');
    expect(e.headers['x-forwarded-port']).toBe(String(tlsPort));
    expect(e.headers.host).toBe('site.test');
  }, T);

  it('a client cannot set X-Forwarded-Proto or X-Forwarded-Port: the listener says them', async () => {
    const r = await get(tlsPort, { servername: 'site.test', headers: { 'x-forwarded-proto': 'http', 'x-forwarded-port': '1' } });
    const e = JSON.parse(r.text) as EchoBody;
    expect(e.rawHeaders.filter((h) => h.toLowerCase() === 'x-forwarded-proto')).toHaveLength(1);
    expect(e.headers['x-forwarded-proto']).toBe('https');
    expect(e.headers['x-forwarded-port']).toBe(String(tlsPort));
  }, T);

  it('SNI picks the certificate of each name; a wildcard matches one label; no or an unknown name gets the first', async () => {
    expect((await get(tlsPort, { servername: 'api.test', ca: caPem() })).cn).toBe('api.test');
    expect((await get(tlsPort, { servername: 'www.site.test', ca: caPem() })).cn).toBe('site.test');
    const w = await get(tlsPort, { servername: 'shop.apps.test', ca: caPem() });
    expect(w.cn).toBe('*.apps.test');
    expect((JSON.parse(w.text) as EchoBody).headers.host).toBe('shop.apps.test');
    expect((await get(tlsPort, { servername: 'a.shop.apps.test' })).cn).toBe('site.test'); // two labels: not the wildcard's
    expect((await get(tlsPort, { servername: 'unknown.test' })).cn).toBe('site.test');
    expect((await get(tlsPort, {})).cn).toBe('site.test'); // no SNI at all
  }, T);

  it('a plain listener beside the TLS ones: X-Forwarded-Proto http with its own port, no HSTS', async () => {
    const r = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: plainPort, path: '/plain', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      }).on('error', reject);
    });
    expect(r.status).toBe(200);
    expect(r.headers).not.toHaveProperty('strict-transport-security');
    const e = JSON.parse(r.text) as EchoBody;
    expect(e.headers['x-forwarded-proto']).toBe('http');
    expect(e.headers['x-forwarded-port']).toBe(String(plainPort));
    expect(lb.logs().some((l) => l.msg === 'ready' && String(l.listen).startsWith(`127.0.0.1:${tlsPort} (tls), 127.0.0.1:${plainPort}, 127.0.0.1:${strictPort} (tls), 127.0.0.1:${redirectPort}`))).toBe(true);
  }, T);

  it('keeps the TLS connection alive across requests', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = origin.requests.length;
      const ports = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const r = await get(tlsPort, { servername: 'site.test', path: `/ka${i}`, ca: caPem(), agent });
        expect(r.status).toBe(200);
        ports.add(r.localPort);
      }
      expect(ports.size).toBe(1); // one connection carried all five
      expect(origin.requests.length - before).toBe(5);
    } finally {
      agent.destroy();
    }
  }, T);

  it('min_version 1.3 refuses a TLS 1.2 handshake and serves TLS 1.3; version 1.2 is served where allowed', async () => {
    await expect(get(strictPort, { servername: 'site.test', maxVersion: 'TLSv1.2' })).rejects.toThrow(/handshake failure|alert/i);
    const r = await get(strictPort, { servername: 'site.test', ca: caPem() });
    expect(r.status).toBe(200);
    expect(r.protocol).toBe('TLSv1.3');
    const old = await get(tlsPort, { servername: 'site.test', maxVersion: 'TLSv1.2', ca: caPem() });
    expect(old.status).toBe(200);
    expect(old.protocol).toBe('TLSv1.2');
  }, T);
});

/** One plain HTTP request; the answer's status, headers and body. */
function plainGet(port: number, path: string, host: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false, headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    }).on('error', reject);
  });
}

describe('redirect_https listeners', () => {
  it('answer 308 to https on the given port, with path and query, the Host without its port', async () => {
    const before = origin.requests.length;
    const r = await plainGet(redirectPort, '/a/b?x=1&y', 'Site.test:80');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://Site.test:${tlsPort}/a/b?x=1&y`);
    expect((await plainGet(redirectPort, '/v6', '[::1]:8080')).headers.location).toBe(`https://[::1]:${tlsPort}/v6`);
    expect((await plainGet(redirect443Port, '/p?q', 'site.test')).headers.location).toBe('https://site.test/p?q'); // 443: no port
    expect((await plainGet(redirectPort, '/x', 'evil.test/@other')).status).toBe(400);
    expect(origin.requests.length).toBe(before); // nothing is proxied
  }, T);

  it('serve /.well-known/acme-challenge/TOKEN from acme_webroot; other names are 404, never outside it', async () => {
    const r = await plainGet(redirectPort, '/.well-known/acme-challenge/tok-EN_123', 'site.test');
    expect(r.status).toBe(200);
    expect(r.text).toBe('tok-EN_123.thumbprint');
    expect((await plainGet(redirectPort, '/.well-known/acme-challenge/missing', 'site.test')).status).toBe(404);
    expect((await plainGet(redirectPort, '/.well-known/acme-challenge/..%2f..%2fetc%2fpasswd', 'site.test')).status).toBe(404);
    // without acme_webroot the challenge path is redirected like any other
    expect((await plainGet(redirect443Port, '/.well-known/acme-challenge/tok-EN_123', 'site.test')).status).toBe(308);
  }, T);
});

describe('certificate expiry', () => {
  it('corelb_tls_certificate_expiry_seconds{listener,name} and the status JSON show each name\'s notAfter', async () => {
    const notAfter = Date.parse(new X509Certificate(readFileSync(api.cert)).validTo) / 1000;
    const metrics = await plainGet(adminPort, '/metrics', '127.0.0.1');
    expect(metrics.text).toContain('# TYPE corelb_tls_certificate_expiry_seconds gauge');
    expect(metrics.text).toContain(`corelb_tls_certificate_expiry_seconds{listener="127.0.0.1:${tlsPort}",name="api.test"} ${notAfter}`);
    expect(metrics.text).toContain(`corelb_tls_certificate_expiry_seconds{listener="127.0.0.1:${tlsPort}",name="*.apps.test"}`);
    expect(metrics.text).toContain(`corelb_tls_certificate_expiry_seconds{listener="127.0.0.1:${strictPort}",name="www.site.test"}`);
    const status = JSON.parse((await plainGet(adminPort, '/status', '127.0.0.1')).text) as { certificates: { listener: string; name: string; expiresInSeconds: number; file: string }[] };
    const entry = status.certificates.find((c) => c.name === 'api.test')!;
    expect(entry).toMatchObject({ listener: `127.0.0.1:${tlsPort}`, file: api.cert });
    expect(entry.expiresInSeconds).toBeGreaterThan(29 * 86400);
  }, T);
});

describe('reload', () => {
  it('re-reads the certificate files: new connections get the new certificate, an open connection keeps working', async () => {
    const first = makeLeaf(ca, 'rotating', { names: ['rotating.test'] });
    const fp = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;
    const before = fp(first.cert);
    const port = await freePort();
    const r = await startCorelb({
      ...corelbConfig({ workers: 2, pools: { web: [origin.url] } }),
      listen: [{ port, tls: { certificates: [{ cert: first.cert, key: first.key }] } }],
    });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const open = await get(port, { servername: 'rotating.test', agent });
      expect(open.fingerprint).toBe(before);
      // the files are replaced in place (as certbot's renewal does), then SIGHUP
      makeLeaf(ca, 'rotating', { names: ['rotating.test'] });
      const after = fp(first.cert);
      expect(after).not.toBe(before);
      const from = r.logs().length;
      process.kill(r.pid, 'SIGHUP');
      await r.waitForLogAfter(from, (l) => l.msg === 'reloaded');
      const swapped = r.logs().slice(from).filter((l) => l.msg === 'new TLS certificates: new connections get them, open ones keep theirs');
      expect(swapped).toHaveLength(2); // one per worker
      for (let i = 0; i < 4; i++) expect((await get(port, { servername: 'rotating.test' })).fingerprint).toBe(after);
      const still = await get(port, { servername: 'rotating.test', agent, path: '/still' });
      expect(still.status).toBe(200);
      expect(still.localPort).toBe(open.localPort); // the same connection, with its old certificate
      expect(still.fingerprint).toBe(before);
      // a reload that changes nothing swaps nothing
      const from2 = r.logs().length;
      process.kill(r.pid, 'SIGHUP');
      await r.waitForLogAfter(from2, (l) => l.msg === 'reloaded');
      expect(r.logs().slice(from2).some((l) => String(l.msg).startsWith('new TLS certificates'))).toBe(false);
      expect((await get(port, { servername: 'rotating.test', agent, path: '/again' })).localPort).toBe(open.localPort);
      // its last connection gone, the replaced app is closed; the workers serve on
      agent.destroy();
      await new Promise((res) => setTimeout(res, 200));
      expect((await get(port, { servername: 'rotating.test' })).status).toBe(200);
      expect(r.logs().some((l) => Number(l.level) >= 50)).toBe(false);
    } finally {
      agent.destroy();
      await r.stop();
    }
  }, T);
});

describe('listener addresses', () => {
  it('`corelb start` refuses when the address of any listener, not only the first, is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as net.AddressInfo).port;
    try {
      const free = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'corelb-busy-'));
      const file = join(dir, 'busy.yaml');
      writeFileSync(file, ['listen:', `  - { port: ${free} }`, `  - port: ${busy}`, `    tls: { certificates: [{ cert: ${site.cert}, key: ${site.key} }] }`, 'pools:', '  web:', '    backends: [http://127.0.0.1:1]', ''].join('\n'));
      const r = spawnSync(process.execPath, [CLI, 'start', '--config', file], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`address 127.0.0.1:${busy} is already in use`);
    } finally {
      blocker.close();
    }
  }, T);
});

describe('certificate files that are wrong', () => {
  function check(file: string): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [CLI, 'check', '--config', file], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('`corelb check` names the file, the field and the line of each; `corelb start` refuses to start', () => {
    const notPem = join(ca.dir, 'broken.pem');
    writeFileSync(notPem, 'not a certificate\n');
    const file = join(ca.dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'listen:',
        '  - port: 18443',
        '    tls:',
        '      certificates:',
        `        - { cert: ${site.cert}, key: ${api.key} }`,
        `        - { cert: ${notPem}, key: ${api.key} }`,
        `        - { cert: ${join(ca.dir, 'missing.crt')}, key: ${wild.key} }`,
        'pools:',
        '  web:',
        '    backends: [http://127.0.0.1:1]',
        '',
      ].join('\n'),
    );
    const r = check(file);
    expect(r.status).toBe(1);
    const out = r.stdout.trim().split('\n');
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(new RegExp(`^${file}:5:\\d+ listen\\[0\\]\\.tls\\.certificates\\[0\\]\\.key: .*api\\.key is not the key of .*site\\.crt$`));
    expect(out[1]).toMatch(new RegExp(`^${file}:6:\\d+ listen\\[0\\]\\.tls\\.certificates\\[1\\]\\.cert: .*broken\\.pem is not PEM`));
    expect(out[2]).toMatch(new RegExp(`^${file}:7:\\d+ listen\\[0\\]\\.tls\\.certificates\\[2\\]\\.cert: cannot read .*missing\\.crt: no such file$`));
    const start = spawnSync(process.execPath, [CLI, 'start', '--config', file], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(start.status).toBe(1);
    expect(start.stderr).toContain('is not the key of');
  }, T);
});
