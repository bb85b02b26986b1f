// Makes throwaway certificates for TLS tests with the `openssl` command (.ci/run installs it): a
// certificate authority, and leaf certificates it signs for given DNS names (wildcards included),
// optionally with an encrypted key, a short life, or no subjectAltName (CN only). EC P-256 keys:
// generating them takes milliseconds.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface CertificateAuthority {
  readonly dir: string;
  /** PEM file of the CA's certificate (what a client trusts). */
  readonly cert: string;
  readonly key: string;
}

export interface Leaf {
  readonly cert: string;
  readonly key: string;
}

export interface LeafOptions {
  /** DNS names for the subjectAltName; none (and no ips): a certificate with only a CN. */
  names: readonly string[];
  /** IP addresses for the subjectAltName. */
  ips?: readonly string[];
  /** The subject's CN (default: the first name). */
  cn?: string;
  /** Days of validity (default 30). */
  days?: number;
  /** Encrypt the key with this passphrase (AES-256). */
  passphrase?: string;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

let serial = 1;

/** A new CA in a new temporary directory (the caller removes `dir`, or lets the OS). */
export function makeCa(name = 'corelb test CA', dir = mkdtempSync(path.join(tmpdir(), 'corelb-certs-'))): CertificateAuthority {
  const safe = name.replace(/[^A-Za-z0-9]+/g, '-');
  const cert = path.join(dir, `${safe}.crt`);
  const key = path.join(dir, `${safe}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { dir, cert, key };
}

/** A leaf certificate signed by `ca`, for server and client authentication, in `ca.dir`. */
export function makeLeaf(ca: CertificateAuthority, basename: string, opts: LeafOptions): Leaf {
  const cert = path.join(ca.dir, `${basename}.crt`);
  const key = path.join(ca.dir, `${basename}.key`);
  const csr = path.join(ca.dir, `${basename}.csr`);
  const ext = path.join(ca.dir, `${basename}.ext`);
  const cn = opts.cn ?? opts.names[0] ?? basename;
  const keyArgs = opts.passphrase === undefined ? [] : ['-aes256', '-pass', `pass:${opts.passphrase}`];
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', ...keyArgs, '-out', key]);
  const passin = opts.passphrase === undefined ? [] : ['-passin', `pass:${opts.passphrase}`];
  openssl(['req', '-new', '-key', key, ...passin, '-out', csr, '-subj', `/CN=${cn}`]);
  const lines = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth,clientAuth'];
  const alt = [...opts.names.map((n) => `DNS:${n}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)];
  if (alt.length > 0) lines.push(`subjectAltName=${alt.join(',')}`);
  writeFileSync(ext, lines.join('\n') + '\n');
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial++ + Date.now()), '-days', String(opts.days ?? 30), '-extfile', ext, '-out', cert]);
  return { cert, key };
}
