// Owns a pool's `tls` section, the TLS settings of its https:// backends: `ca` (PEM CA file;
// default Node's root store), `servername` (SNI and the name checked; default the URL's host),
// `verify` (default true; false is a warning), `cert` / `key` (a client certificate, mTLS).
// Files are checked here; the workers and the health prober read them when they build a context.

import { isIP } from 'node:net';
import { loadKeyPair, readCertificate } from './pem-files.js';
import type { BackendConfig, UpstreamTlsConfig } from './types.js';
import { usesTls } from './backend-url.js';
import type { Field, Walk } from './walk.js';

export const UPSTREAM_TLS_KEYS = ['ca', 'servername', 'verify', 'cert', 'key'] as const;
const SERVERNAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

/** `f`: the pool's `tls` (undefined when absent); `backends`: the pool's, to warn when none is https. */
export function validateUpstreamTls(walk: Walk, f: Field | undefined, backends: readonly BackendConfig[]): UpstreamTlsConfig | null | undefined {
  if (f === undefined || walk.isNull(f)) return null;
  const e = walk.map(f, UPSTREAM_TLS_KEYS);
  if (e === undefined) return undefined;
  let ok = true;
  let caFile: string | null = null;
  const caField = e.get('ca');
  if (caField !== undefined) {
    const ca = readCertificate(walk, caField);
    if (ca === undefined) ok = false;
    else caFile = ca.file;
  }
  let servername: string | null = null;
  const nameField = e.get('servername');
  if (nameField !== undefined) {
    const v = walk.string(nameField, 'a DNS name');
    if (v === undefined) ok = false;
    else if (!SERVERNAME.test(v.toLowerCase()) || v.length > 253 || isIP(v) !== 0) {
      walk.report(nameField.at, nameField.path, `must be a DNS name (not an IP address, no port), got ${JSON.stringify(v)}`);
      ok = false;
    } else servername = v.toLowerCase();
  }
  let verify = true;
  const verifyField = e.get('verify');
  if (verifyField !== undefined) {
    const v = walk.boolean(verifyField);
    if (v === undefined) ok = false;
    else verify = v;
    if (v === false) walk.warn(verifyField.at, verifyField.path, 'is false: the certificates of this pool\'s backends are not checked (anyone on the path can pose as them)');
  }
  let certFile: string | null = null;
  let keyFile: string | null = null;
  const certField = e.get('cert');
  const keyField = e.get('key');
  if (certField !== undefined && keyField !== undefined) {
    const pair = loadKeyPair(walk, certField, keyField, undefined, null);
    if (pair === undefined) ok = false;
    else ({ certFile, keyFile } = pair);
  } else if (certField !== undefined || keyField !== undefined) {
    const [given, missing] = certField !== undefined ? [certField, 'key'] : [keyField!, 'cert'];
    walk.report(given.at, `${f.path}.${missing}`, 'is required with cert / key: the client certificate and its private key go together');
    ok = false;
  }
  if (ok && !backends.some((b) => usesTls(b.url))) walk.warn(f.at, f.path, 'applies to https:// backends only, and this pool has none');
  return ok ? { caFile, servername, verify, certFile, keyFile } : undefined;
}
