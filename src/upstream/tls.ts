// Owns TLS towards backends (https:// URLs): the secure context of a pool's `tls` settings (its
// CA file, else Node's root store; its client certificate for mTLS), built once per pool when a
// configuration is applied, never per connection; the server name sent and checked (`servername`,
// else the URL's host; none for an IP address, whose certificate is checked against the IP); and
// whether the certificate is verified. Used by the upstream connections and the health probes.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { UpstreamTlsConfig } from '../config/types.js';

export interface UpstreamTls {
  readonly secureContext: tls.SecureContext;
  /** SNI and the name the certificate must carry; undefined: the host is an IP (checked as such). */
  readonly servername: string | undefined;
  /** false only with `verify: false`. */
  readonly verify: boolean;
}

/** The secure context for a pool's settings (null: defaults). Throws when a file cannot be read. */
export function secureContextFor(cfg: UpstreamTlsConfig | null): tls.SecureContext {
  if (cfg === null) return tls.createSecureContext({});
  return tls.createSecureContext({
    ca: cfg.caFile === null ? undefined : readFileSync(cfg.caFile),
    cert: cfg.certFile === null ? undefined : readFileSync(cfg.certFile),
    key: cfg.keyFile === null ? undefined : readFileSync(cfg.keyFile),
  });
}

/** What one backend's connections use; `secureContext` from secureContextFor, shared by the pool. */
export function upstreamTls(secureContext: tls.SecureContext, cfg: UpstreamTlsConfig | null, host: string): UpstreamTls {
  const servername = cfg?.servername ?? (isIP(host) === 0 ? host : undefined);
  return { secureContext, servername, verify: cfg?.verify ?? true };
}

/** A short reason for a failed handshake, for the log: `CODE: message`. */
export function tlsFailure(err: Error | null): string {
  if (err === null) return 'closed during the TLS handshake';
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined ? err.message : `${code}: ${err.message}`;
}
