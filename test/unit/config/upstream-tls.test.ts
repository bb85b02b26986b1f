// Tests for https:// backends in the config (src/config/backend-url.ts, upstream-tls.ts): the URL's
// normal form and default port, a pool's `tls` settings with real files made by openssl, and
// every mistake reported at its field and line; `verify: false` and a `tls` without https
// backends are warnings.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normaliseBackendUrl } from '../../../src/config/index.js';
import { makeCa, makeLeaf } from '../../helpers/certs.js';
import { config, lines, parse, problems } from '../../helpers/config-text.js';

const ca = makeCa();
const client = makeLeaf(ca, 'client', { names: ['client.test'] });
const other = makeLeaf(ca, 'other', { names: ['other.test'] });
const notPem = join(ca.dir, 'not-pem.txt');
writeFileSync(notPem, 'hello\n');

/** A pool of one https backend with these `tls` lines (from line 5). */
const pool = (...tls: string[]): string => lines('pools:', '  web:', '    backends: [https://api.internal]', '    tls:', ...tls.map((t) => `      ${t}`));


describe('https backends', () => {
  it('normalise to https://host:port, 443 by default; http and https on one port are two backends', () => {
    expect(normaliseBackendUrl('https://API.internal')).toEqual({ url: 'https://api.internal:443', host: 'api.internal', port: 443 });
    expect(normaliseBackendUrl('https://[::1]:8443')).toEqual({ url: 'https://[::1]:8443', host: '::1', port: 8443 });
    const c = config(lines('pools:', '  web:', '    backends: [http://a:443, https://a:443]'));
    expect(c.pools[0]!.backends.map((b) => b.url)).toEqual(['http://a:443', 'https://a:443']);
    expect(c.pools[0]!.tls).toBeNull();
  });

  it('reads a pool\'s tls: ca, servername (lower-cased), verify, cert and key (absolute paths)', () => {
    const c = config(pool(`ca: ${ca.cert}`, 'servername: API.example.test', 'verify: true', `cert: ${client.cert}`, `key: ${client.key}`));
    expect(c.pools[0]!.tls).toEqual({ caFile: ca.cert, servername: 'api.example.test', verify: true, certFile: client.cert, keyFile: client.key });
  });

  it('verify: false is a warning at its line; so is tls on a pool without https backends', () => {
    const r = parse(pool('verify: false') + lines('  plain:', '    backends: [http://b]', '    tls: { ca: ' + ca.cert + ' }', 'routes: [{ pool: web }, { path_prefix: /p, pool: plain }]'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.warnings.map((w) => `${w.line} ${w.path}`)).toEqual(['5 pools.web.tls.verify', '8 pools.plain.tls']);
    expect(r.warnings[0]!.message).toContain('not checked');
    expect(r.warnings[1]!.message).toContain('applies to https:// backends only');
  });

  it.each([
    { name: 'a CA file that is not PEM', tls: [`ca: ${notPem}`], path: 'pools.web.tls.ca', message: 'not-pem.txt is not PEM' },
    { name: 'a missing CA file', tls: [`ca: ${join(ca.dir, 'gone.crt')}`], path: 'pools.web.tls.ca', message: 'gone.crt: no such file' },
    { name: 'a cert without its key', tls: [`cert: ${client.cert}`], path: 'pools.web.tls.key', message: 'is required with cert' },
    { name: 'a key that is not the cert\'s', tls: [`cert: ${client.cert}`, `key: ${other.key}`], path: 'pools.web.tls.key', message: `is not the key of ${client.cert}`, line: 6 },
    { name: 'an IP as servername', tls: ['servername: 10.0.0.1'], path: 'pools.web.tls.servername', message: 'must be a DNS name' },
    { name: 'verify that is not a boolean', tls: ['verify: maybe'], path: 'pools.web.tls.verify', message: 'expected true or false' },
    { name: 'an unknown key', tls: ['sni: x'], path: 'pools.web.tls.sni', message: 'allowed keys: ca, servername, verify, cert, key' },
  ])('reports $name at its field and line', ({ tls, path, message, line }: { tls: string[]; path: string; message: string; line?: number }) => {
    const p = problems(pool(...tls));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ path, line: line ?? 5 });
    expect(p[0]!.message).toContain(message);
  });
});
