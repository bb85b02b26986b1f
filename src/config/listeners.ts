// Owns the `listen` section: one listener (`{host, port}`) or a list of them, each plain HTTP,
// TLS (`tls: {certificates, min_version, ciphers, hsts}`), or a redirect to HTTPS
// (`redirect_https`, with an optional `acme_webroot`). Certificate files are read and checked
// here, at load time (readable, PEM, key matches certificate, passphrase right), so that `corelb
// check`, a start and a reload say what is wrong at the field; the DNS names each certificate
// serves (SNI) and its expiry come from node:crypto's X509Certificate.

import type { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isSeq } from 'yaml';
import { normaliseListenHost } from './names.js';
import { fileName, loadKeyPair } from './pem-files.js';
import type { CertificateConfig, ListenerConfig, ListenerTlsConfig } from './types.js';
import { parseDuration } from './units.js';
import type { Entries, Field, Walk } from './walk.js';

export const LISTENER_KEYS = ['host', 'port', 'tls', 'redirect_https', 'acme_webroot'] as const;
export const TLS_KEYS = ['certificates', 'min_version', 'ciphers', 'hsts'] as const;
export const CERTIFICATE_KEYS = ['cert', 'key', 'passphrase'] as const;
export const DEFAULT_LISTENER: ListenerConfig = Object.freeze({ host: '127.0.0.1', port: 8080, tls: null, redirectHttps: null, acmeWebroot: null });
/** `corelb check` (and every load) warns about a certificate that expires sooner than this. */
export const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;

const DAY_S = 24 * 3600;
// one label of a DNS name, or a wildcard as the whole leftmost label
const DNS_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,62})\.)*[a-z0-9_]([a-z0-9_-]{0,62})$/;

/** True when two listen hosts may share an address: the same, a wildcard, or a name (unknown). */
export function hostsMayOverlap(a: string, b: string): boolean {
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
  return a === b || wildcard(a) || wildcard(b) || isIP(a) === 0 || isIP(b) === 0;
}

/** `host:port` as an operator writes it (IPv6 in brackets). */
export function listenerAddress(l: { readonly host: string; readonly port: number }): string {
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/** The listeners of `listen` (absent: one plain listener on 127.0.0.1:8080). */
export function validateListeners(walk: Walk, f: Field | undefined, now = Date.now()): readonly ListenerConfig[] {
  if (f === undefined || walk.isNull(f)) return [DEFAULT_LISTENER];
  const r = walk.resolved(f);
  if (r === undefined) return [DEFAULT_LISTENER];
  let items: Field[] | undefined;
  if (walk.isMapping(r)) items = [r];
  else if (isSeq(r.node)) items = walk.list(r);
  else {
    const expected = 'a listener ({host, port, tls}) or a list of them';
    const v = walk.scalar(r, expected);
    if (v !== undefined) walk.mismatch(r, expected, v);
  }
  if (items === undefined) return [DEFAULT_LISTENER];
  if (items.length === 0) {
    walk.report(f.at, f.path, 'needs at least one listener');
    return [DEFAULT_LISTENER];
  }
  const out: ListenerConfig[] = [];
  const fields: Field[] = [];
  for (const item of items) {
    const l = validateListener(walk, item, now);
    if (l === undefined) continue;
    const clash = out.findIndex((o) => o.port === l.port && hostsMayOverlap(o.host, l.host));
    if (clash >= 0) {
      walk.report(item.at, item.path, `${listenerAddress(l)} may share an address with ${fields[clash]!.path} (${listenerAddress(out[clash]!)})`);
      continue;
    }
    out.push(l);
    fields.push(item);
  }
  return out.length === 0 ? [DEFAULT_LISTENER] : out;
}

function validateListener(walk: Walk, f: Field, now: number): ListenerConfig | undefined {
  const e = walk.isNull(f) ? new Map() as Entries : walk.map(f, LISTENER_KEYS);
  if (e === undefined) return undefined;
  let host = DEFAULT_LISTENER.host;
  let port = DEFAULT_LISTENER.port;
  const hostField = e.get('host');
  if (hostField !== undefined) {
    const raw = walk.string(hostField, 'an IP address or host name');
    if (raw !== undefined) {
      const r = normaliseListenHost(raw);
      if (typeof r === 'string') walk.report(hostField.at, hostField.path, r);
      else host = r.host;
    }
  }
  const portField = e.get('port');
  if (portField !== undefined) port = walk.integer(portField, 1, 65535) ?? port;
  const tlsField = e.get('tls');
  const tls = tlsField === undefined || walk.isNull(tlsField) ? null : validateTls(walk, tlsField, now);
  if (tls === undefined) return undefined;
  let redirectHttps: number | null = null;
  const redirectField = e.get('redirect_https');
  if (redirectField !== undefined) {
    const v = walk.scalar(redirectField, 'true (port 443) or the https port');
    if (v === true) redirectHttps = 443;
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535) redirectHttps = v;
    else if (v !== false && v !== undefined) return walk.mismatch(redirectField, 'true (port 443) or the https port, 1 to 65535', v);
    if (redirectHttps !== null && tls !== null) {
      walk.report(redirectField.at, redirectField.path, 'a TLS listener serves HTTPS itself: redirect_https belongs on a plain listener');
      return undefined;
    }
  }
  let acmeWebroot: string | null = null;
  const webrootField = e.get('acme_webroot');
  if (webrootField !== undefined) {
    const dir = fileName(walk, webrootField);
    if (dir === undefined) return undefined;
    if (redirectHttps === null) {
      walk.report(webrootField.at, webrootField.path, 'is served by a redirect_https listener only: add redirect_https');
      return undefined;
    }
    const why = directoryProblem(dir);
    if (why !== null) {
      walk.report(webrootField.at, webrootField.path, why);
      return undefined;
    }
    acmeWebroot = dir;
  }
  return { host, port, tls, redirectHttps, acmeWebroot };
}

function directoryProblem(dir: string): string | null {
  try {
    return statSync(dir).isDirectory() ? null : `${dir} is not a directory`;
  } catch {
    return `directory ${dir} does not exist`;
  }
}

function validateTls(walk: Walk, f: Field, now: number): ListenerTlsConfig | undefined {
  const e = walk.map(f, TLS_KEYS);
  if (e === undefined) return undefined;
  const certsField = e.get('certificates');
  let certificates: CertificateConfig[] | undefined;
  if (certsField === undefined) walk.report(f.at, `${f.path}.certificates`, 'is required: a list of {cert, key} (the first is the default)');
  else certificates = validateCertificates(walk, certsField, now);

  let minVersion: ListenerTlsConfig['minVersion'] = '1.2';
  const minField = e.get('min_version');
  if (minField !== undefined) {
    const v = walk.scalar(minField, '"1.2" or "1.3"');
    if (v === '1.2' || v === 1.2) minVersion = '1.2';
    else if (v === '1.3' || v === 1.3) minVersion = '1.3';
    else if (v !== undefined) walk.mismatch(minField, '"1.2" or "1.3"', v);
  }

  let ciphers: string | null = null;
  const ciphersField = e.get('ciphers');
  if (ciphersField !== undefined) {
    const v = walk.string(ciphersField, 'an OpenSSL cipher list');
    if (v !== undefined) {
      if (v.length === 0 || /[^\x21-\x7e]/.test(v)) walk.report(ciphersField.at, ciphersField.path, 'must be a non-empty OpenSSL cipher list without blanks, like "ECDHE+AESGCM:ECDHE+CHACHA20"');
      // BoringSSL's TLS 1.3 suites are fixed; the list only chooses TLS 1.2's, which 1.3 refuses
      else if (minVersion === '1.3') walk.report(ciphersField.at, ciphersField.path, 'chooses TLS 1.2 ciphers only: leave it out with min_version "1.3" (TLS 1.3 suites are not configurable)');
      else ciphers = v;
    }
  }

  let hstsSeconds: number | null = null;
  const hstsField = e.get('hsts');
  if (hstsField !== undefined && !walk.isNull(hstsField)) {
    const v = walk.scalar(hstsField, 'a duration like "1y" or "180d"');
    if (v !== undefined) {
      const s = hstsMaxAge(v);
      if (typeof s === 'string') walk.report(hstsField.at, hstsField.path, s);
      else hstsSeconds = s;
    }
  }
  if (certificates === undefined) return undefined;
  return { certificates, minVersion, ciphers, hstsSeconds };
}

/** Seconds for `1y`, `180d` or any config duration (`12h`); a year is 365 days. */
function hstsMaxAge(v: unknown): number | string {
  if (typeof v === 'string') {
    const m = /^(\d{1,6})(y|d)$/.exec(v);
    if (m !== null) return Number(m[1]) * (m[2] === 'y' ? 365 : 1) * DAY_S;
  }
  const ms = parseDuration(v);
  if (typeof ms === 'string') return `${ms}; also accepted: days and years like "180d", "1y"`;
  return Math.floor(ms / 1000);
}

function validateCertificates(walk: Walk, f: Field, now: number): CertificateConfig[] | undefined {
  const items = walk.list(f);
  if (items === undefined) return undefined;
  if (items.length === 0) {
    walk.report(f.at, f.path, 'needs at least one {cert, key}');
    return undefined;
  }
  const out: CertificateConfig[] = [];
  const owner = new Map<string, string>();
  let ok = true;
  for (const [i, item] of items.entries()) {
    const c = validateCertificate(walk, item, now);
    if (c === undefined) {
      ok = false;
      continue;
    }
    if (i > 0 && c.names.length === 0) {
      walk.report(item.at, item.path, 'names no DNS host (no subjectAltName DNS entry, no CN): only the first certificate may serve clients without a known name');
      ok = false;
    }
    const taken = c.names.filter((n) => owner.has(n));
    if (taken.length > 0) {
      walk.report(item.at, item.path, `serves ${taken.join(', ')}, which ${owner.get(taken[0]!)} serves already: a name picks one certificate`);
      ok = false;
    }
    for (const n of c.names) if (!owner.has(n)) owner.set(n, item.path);
    out.push(c);
  }
  return ok ? out : undefined;
}

function validateCertificate(walk: Walk, f: Field, now: number): CertificateConfig | undefined {
  const e = walk.map(f, CERTIFICATE_KEYS);
  if (e === undefined) return undefined;
  const certField = e.get('cert');
  const keyField = e.get('key');
  if (certField === undefined) walk.report(f.at, `${f.path}.cert`, 'is required: the PEM certificate file (with its chain)');
  if (keyField === undefined) walk.report(f.at, `${f.path}.key`, 'is required: the PEM private key file');
  const passField = e.get('passphrase');
  let passphrase: string | null = null;
  if (passField !== undefined) passphrase = walk.string(passField, 'the key\'s passphrase') ?? null;
  if (certField === undefined || keyField === undefined) return undefined;

  const pair = loadKeyPair(walk, certField, keyField, passField, passphrase);
  if (pair === undefined) return undefined;
  const { certFile, keyFile, x509, key } = pair;
  const notAfterMs = Date.parse(x509.validTo);
  if (notAfterMs <= now) walk.warn(certField.at, certField.path, `${certFile} expired on ${new Date(notAfterMs).toISOString()}`);
  else if (notAfterMs - now < EXPIRY_WARNING_MS) {
    const days = Math.floor((notAfterMs - now) / (DAY_S * 1000));
    walk.warn(certField.at, certField.path, `${certFile} expires in ${days} day${days === 1 ? '' : 's'} (${new Date(notAfterMs).toISOString()})`);
  }
  return { certFile, keyFile, passphrase, names: dnsNames(x509), notAfterMs, fingerprint: x509.fingerprint256, keyType: key.asymmetricKeyType ?? 'unknown' };
}

/** Lower-case DNS names of the subjectAltName, else the CN (when it looks like a host name). */
function dnsNames(x509: X509Certificate): string[] {
  const names: string[] = [];
  const san = x509.subjectAltName;
  if (san !== undefined) {
    for (const part of san.split(', ')) {
      if (!part.startsWith('DNS:')) continue;
      const n = part.slice(4).toLowerCase();
      if (DNS_NAME.test(n) && !names.includes(n)) names.push(n);
    }
  }
  if (names.length > 0) return names;
  for (const line of x509.subject.split('\n')) {
    if (!line.startsWith('CN=')) continue;
    const n = line.slice(3).toLowerCase();
    if (DNS_NAME.test(n)) names.push(n);
  }
  return names;
}
