// Tests for src/config/listeners.ts: `listen` as one listener or a list; TLS listeners with real
// certificate files made by openssl (test/helpers/certs.ts): names from subjectAltName or CN,
// expiry, and every bad file reported at its field and line; a warning for a certificate close to
// its end.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../../src/config/index.js';
import { makeCa, makeLeaf } from '../../helpers/certs.js';
import { config, lines, parse, problems } from '../../helpers/config-text.js';

const POOL = lines('pools:', '  web:', '    backends:', '      - http://127.0.0.1:3001');

const ca = makeCa();
const site = makeLeaf(ca, 'site', { names: ['site.test', 'www.site.test'] });
const api = makeLeaf(ca, 'api', { names: ['*.api.test'] });
const cnOnly = makeLeaf(ca, 'cn-only', { names: [], cn: 'Legacy.Test' });
const locked = makeLeaf(ca, 'locked', { names: ['locked.test'], passphrase: 'open sesame' });
const soon = makeLeaf(ca, 'soon', { names: ['soon.test'], days: 3 });
const notPem = join(ca.dir, 'not-pem.txt');
writeFileSync(notPem, 'hello\n');

/** A TLS listener on port 8443 with these certificate lines (each `{cert: .., key: ..}`), from line 5 on. */
function tlsListener(...certLines: string[]): string {
  return lines('listen:', '  - port: 8443', '    tls:', '      certificates:', ...certLines.map((c) => `        - ${c}`)) + POOL;
}
const pair = (l: { cert: string; key: string }, extra = ''): string => `{ cert: ${l.cert}, key: ${l.key}${extra} }`;

describe('listen', () => {
  it('one listener as a mapping is a list of one, plain HTTP', () => {
    expect(config(lines('listen: { host: 0.0.0.0, port: 80 }') + POOL).listen).toEqual([{ host: '0.0.0.0', port: 80, tls: null, redirectHttps: null, acmeWebroot: null }]);
  });

  it('a list of listeners, in order', () => {
    const c = config(lines('listen:', '  - { port: 80 }', '  - { host: ::1, port: 8080 }') + POOL);
    expect(c.listen).toEqual([
      { host: '127.0.0.1', port: 80, tls: null, redirectHttps: null, acmeWebroot: null },
      { host: '::1', port: 8080, tls: null, redirectHttps: null, acmeWebroot: null },
    ]);
  });

  it.each([
    { name: 'an empty list', text: lines('listen: []'), path: 'listen', line: 1, message: 'needs at least one listener' },
    { name: 'two listeners on one address', text: lines('listen:', '  - { port: 80 }', '  - { host: 0.0.0.0, port: 80 }'), path: 'listen[1]', line: 3, message: 'may share an address with listen[0] (127.0.0.1:80)' },
    { name: 'an unknown key', text: lines('listen:', '  - { port: 80, tsl: {} }'), path: 'listen[0].tsl', line: 2, message: 'allowed keys: host, port, tls' },
    { name: 'admin on a listener port', text: lines('listen:', '  - { port: 80 }', '  - { port: 81 }', 'admin: { port: 81 }'), path: 'admin.port', line: 4, message: 'must differ from the port of listener 127.0.0.1:81 (81)' },
  ])('reports $name', ({ text, path, line, message }) => {
    const p = problems(text + POOL);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ path, line });
    expect(p[0]!.message).toContain(message);
  });
});

describe('redirect_https listeners', () => {
  it('redirect_https: true is port 443, or a port; acme_webroot an existing directory (absolute)', () => {
    const c = config(lines('listen:', '  - { port: 80, redirect_https: true, acme_webroot: ' + ca.dir + ' }', '  - { port: 8080, redirect_https: 8443 }', '  - { port: 8081, redirect_https: false }') + POOL);
    expect(c.listen.map((l) => [l.redirectHttps, l.acmeWebroot])).toEqual([[443, ca.dir], [8443, null], [null, null]]);
  });

  it.each([
    { name: 'redirect_https on a TLS listener', text: lines('listen:', '  - port: 443', `    tls: { certificates: [${pair(site)}] }`, '    redirect_https: true'), path: 'listen[0].redirect_https', message: 'belongs on a plain listener' },
    { name: 'acme_webroot without redirect_https', text: lines('listen:', `  - { port: 80, acme_webroot: ${ca.dir} }`), path: 'listen[0].acme_webroot', message: 'add redirect_https' },
    { name: 'a missing acme_webroot', text: lines('listen:', `  - { port: 80, redirect_https: true, acme_webroot: ${join(ca.dir, 'nope')} }`), path: 'listen[0].acme_webroot', message: 'does not exist' },
    { name: 'a redirect port out of range', text: lines('listen:', '  - { port: 80, redirect_https: 0 }'), path: 'listen[0].redirect_https', message: 'true (port 443) or the https port' },
  ])('reports $name', ({ text, path, message }) => {
    const p = problems(text + POOL);
    expect(p).toHaveLength(1);
    expect(p[0]!.path).toBe(path);
    expect(p[0]!.message).toContain(message);
  });
});

describe('TLS listeners', () => {
  it('reads each certificate: its DNS names (subjectAltName, else CN), its key type and expiry; the first is the default', () => {
    const c = config(tlsListener(pair(site), pair(api), pair(cnOnly)));
    const tls = c.listen[0]!.tls!;
    expect(tls.minVersion).toBe('1.2');
    expect(tls.ciphers).toBeNull();
    expect(tls.hstsSeconds).toBeNull();
    expect(tls.certificates.map((x) => x.names)).toEqual([['site.test', 'www.site.test'], ['*.api.test'], ['legacy.test']]);
    expect(tls.certificates[0]).toMatchObject({ certFile: site.cert, keyFile: site.key, passphrase: null, keyType: 'ec' });
    expect(tls.certificates[0]!.notAfterMs).toBeGreaterThan(Date.now() + 20 * 24 * 3600 * 1000);
  });

  it('an encrypted key with its passphrase; min_version 1.3 (quoted or not), ciphers, hsts in years and days', () => {
    const c = config(
      lines('listen:', '  - port: 8443', '    tls:', `      certificates: [${pair(locked, ', passphrase: open sesame')}]`, '      min_version: 1.3', '      hsts: 1y') +
        lines('  - port: 9443', '    tls:', `      certificates: [${pair(site)}]`, '      ciphers: ECDHE+AESGCM', '      hsts: 180d') +
        POOL,
    );
    expect(c.listen[0]!.tls).toMatchObject({ minVersion: '1.3', hstsSeconds: 365 * 86400, ciphers: null });
    expect(c.listen[0]!.tls!.certificates[0]!.passphrase).toBe('open sesame');
    expect(c.listen[1]!.tls).toMatchObject({ minVersion: '1.2', hstsSeconds: 180 * 86400, ciphers: 'ECDHE+AESGCM' });
  });

  it.each([
    { name: 'a missing certificate file', certs: [`{ cert: ${join(ca.dir, 'nope.crt')}, key: ${site.key} }`], path: 'listen[0].tls.certificates[0].cert', message: 'nope.crt: no such file' },
    { name: 'a certificate that is not PEM', certs: [`{ cert: ${notPem}, key: ${site.key} }`], path: 'listen[0].tls.certificates[0].cert', message: 'not-pem.txt is not PEM' },
    { name: 'a key that is not PEM', certs: [`{ cert: ${site.cert}, key: ${notPem} }`], path: 'listen[0].tls.certificates[0].key', message: 'not-pem.txt is not PEM' },
    { name: 'a key that is not the certificate\'s', certs: [`{ cert: ${site.cert}, key: ${api.key} }`], path: 'listen[0].tls.certificates[0].key', message: `${api.key} is not the key of ${site.cert}` },
    { name: 'a wrong passphrase', certs: [pair(locked, ', passphrase: wrong')], path: 'listen[0].tls.certificates[0].passphrase', message: `wrong passphrase for ${locked.key}` },
    { name: 'an encrypted key without passphrase', certs: [pair(locked)], path: 'listen[0].tls.certificates[0].key', message: 'is encrypted: set passphrase' },
    { name: 'no key', certs: [`{ cert: ${site.cert} }`], path: 'listen[0].tls.certificates[0].key', message: 'is required' },
    { name: 'two certificates for one name', certs: [pair(site), pair(site)], path: 'listen[0].tls.certificates[1]', message: 'serves site.test, www.site.test, which listen[0].tls.certificates[0] serves already', line: 6 },
  ])('reports $name at its field and line', ({ certs, path, message, line }: { certs: string[]; path: string; message: string; line?: number }) => {
    const p = problems(tlsListener(...certs));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ path, line: line ?? 5 });
    expect(p[0]!.message).toContain(message);
  });

  it.each([
    { name: 'no certificates', tls: ['    tls: { min_version: "1.2" }'], path: 'listen[0].tls.certificates', message: 'is required' },
    { name: 'ciphers with TLS 1.3 only', tls: ['    tls:', `      certificates: [${pair(site)}]`, '      min_version: "1.3"', '      ciphers: ECDHE+AESGCM'], path: 'listen[0].tls.ciphers', message: 'TLS 1.2 ciphers only' },
    { name: 'TLS 1.1', tls: ['    tls:', `      certificates: [${pair(site)}]`, '      min_version: "1.1"'], path: 'listen[0].tls.min_version', message: 'expected "1.2" or "1.3"' },
    { name: 'hsts that is not a duration', tls: ['    tls:', `      certificates: [${pair(site)}]`, '      hsts: forever'], path: 'listen[0].tls.hsts', message: '"1y"' },
  ])('reports $name', ({ tls, path, message }) => {
    const p = problems(lines('listen:', '  - port: 8443', ...tls) + POOL);
    expect(p).toHaveLength(1);
    expect(p[0]!.path).toBe(path);
    expect(p[0]!.message).toContain(message);
  });

  it('a certificate that expires within 14 days is a warning, with its line; `corelb check` prints it and passes', () => {
    const text = tlsListener(pair(site), pair(soon));
    const r = parse(text);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ path: 'listen[0].tls.certificates[1].cert', line: 6 });
    expect(r.warnings[0]!.message).toMatch(/soon\.crt expires in [23] days/);
    const file = join(ca.dir, 'soon.yaml');
    writeFileSync(file, text);
    const out = checkCommand(file);
    expect(out.exitCode).toBe(0);
    expect(out.output).toMatch(new RegExp(`^warning: ${file}:6:\\d+ listen\\[0\\]\\.tls\\.certificates\\[1\\]\\.cert: .*expires in`, 'm'));
    expect(out.output).toContain(`ok: ${file}`);
  });
});
