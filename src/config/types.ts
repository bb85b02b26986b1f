// Owns the shape of a validated configuration: what every other module may read.
// Values are normalised (durations in ms, sizes in bytes, workers resolved) and deep-frozen.

import type { Algorithm, AlgorithmSettings } from '../balancer/registry.js';

/** The algorithms and their names are the balancer registry's (src/balancer/registry.ts). */
export type { Algorithm };

/** What a consistent-hash pool hashes (`hash_key: path | ip | header:NAME | cookie:NAME | query:NAME`). */
export interface HashKey {
  readonly kind: 'path' | 'ip' | 'header' | 'cookie' | 'query';
  /** Header names lower-case; cookie and query names as written. '' for path and ip. */
  readonly name: string;
}

/** `sticky: { cookie: NAME, ttl: 1h }`: a cookie names the backend that served the client. */
export interface StickyConfig {
  readonly cookie: string;
  /** Max-Age of the cookie; 0 = a session cookie (no Max-Age). */
  readonly ttlMs: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface BackendConfig {
  /** Normalised URL, the backend's identity across reloads: `http://host:port` or `https://host:port`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Integer >= 1, default 1. */
  readonly weight: number;
}

/** Active health check of every backend of a pool, run by the primary (`health:`). */
export interface HealthCheckConfig {
  /** Request path, starts with '/'. */
  readonly path: string;
  readonly intervalMs: number;
  /** Whole probe (connect + response head) must finish within this; <= intervalMs. */
  readonly timeoutMs: number;
  /** Consecutive successes that bring a down backend up. */
  readonly rise: number;
  /** Consecutive failures that take an up backend down. */
  readonly fall: number;
  /** Inclusive status range that counts as healthy (`expect: 200-399`, or one code `200`). */
  readonly expectMin: number;
  readonly expectMax: number;
}

/** Passive checks from real traffic (`passive:`): failures counted by workers, judged by the primary. */
export interface PassiveConfig {
  /** Failures (connect errors, resets, timeouts, invalid responses, 5xx) within `windowMs` that eject. */
  readonly failures: number;
  readonly windowMs: number;
  /** First ejection time; doubles on each repeat ejection, capped at max(ejectMs, 300s). */
  readonly ejectMs: number;
}

/** A pool's `tls:` for its https:// backends. Files are checked at load time, read by each user. */
export interface UpstreamTlsConfig {
  /** PEM file of the CAs that sign the backends' certificates; null: Node's root store. */
  readonly caFile: string | null;
  /** Server name sent (SNI) and checked in the certificate; null: the backend URL's host. */
  readonly servername: string | null;
  /** false: backend certificates are not checked (warned at start). Default true. */
  readonly verify: boolean;
  /** Client certificate and key for backends that ask for one (mTLS); both or neither. */
  readonly certFile: string | null;
  readonly keyFile: string | null;
}

/** A pool; the fields its algorithm owns (AlgorithmSettings) come from the algorithms' options. */
export interface PoolConfig extends AlgorithmSettings {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly backends: readonly BackendConfig[];
  /** null: no active checks (`health:` absent). */
  readonly health: HealthCheckConfig | null;
  /** null: passive checks off (`passive: false`). Default {failures: 5, window: 10s, eject: 30s}. */
  readonly passive: PassiveConfig | null;
  /** Ramp of a returning backend's effective weight; 0 = off (default). */
  readonly slowStartMs: number;
  /** Extra attempts on other backends after a retryable failure; default 2, 0 = never retry. */
  readonly retries: number;
  /** Retries allowed as a fraction of recent requests (`retry_budget: 20%` -> 0.2); default 0.2. */
  readonly retryBudget: number;
  /** null: no sticky sessions (default). */
  readonly sticky: StickyConfig | null;
  /** TLS to the pool's https:// backends; null: defaults (verify against Node's roots). */
  readonly tls: UpstreamTlsConfig | null;
  /**
   * null: `backends` as listed. Otherwise backends come from DNS: the validated Config has none,
   * the primary fills them in from its lookups before it lays a generation out.
   */
  readonly discover: DiscoverConfig | null;
  /** `cache: true`: answers are stored in and served from the shared cache (needs `cache:`). */
  readonly cache: boolean;
}

/** The top-level `cache` section: one store shared by every worker, made at start. */
export interface CacheConfig {
  /** Bytes of entry storage (the index comes on top); restart-only. */
  readonly sizeBytes: number;
  /** Larger answers stream through uncached. */
  readonly maxObjectBytes: number;
  /** Freshness of answers without any; 0: such answers are not stored. */
  readonly defaultTtlMs: number;
  /** How long past its freshness an answer may stand in for an error (RFC 5861's default); 0: off. */
  readonly staleIfErrorMs: number;
  /** How long past its freshness an answer may be served while one request refreshes it, when the
   * answer says nothing (RFC 5861's default); 0: off. */
  readonly staleWhileRevalidateMs: number;
}

/** Backends found by DNS (`discover:`), looked up by the primary every `everyMs`. */
export interface DiscoverConfig {
  /** dns: A and AAAA records of `name`, each at `port`; srv: SRV records of `name` (their targets' A and AAAA). */
  readonly kind: 'dns' | 'srv';
  /** Lower-case. */
  readonly name: string;
  /** dns: the backends' port; 0 for srv (each record carries one). */
  readonly port: number;
  readonly everyMs: number;
  /** The weight of every discovered backend (default 1). */
  readonly weight: number;
}

/** The DNS server discovery asks (`resolver: 127.0.0.1:5353`). */
export interface ResolverConfig {
  readonly host: string;
  readonly port: number;
}

export interface RouteConfig {
  /** Lower-case host without port, or null to match any host. */
  readonly host: string | null;
  /** Starts with '/'. */
  readonly pathPrefix: string;
  readonly pool: string;
  /** `cache: true`: requests this route matches use the shared cache (as a pool's `cache` does). */
  readonly cache: boolean;
}

/** One certificate of a TLS listener, read and checked at load time. */
export interface CertificateConfig {
  /** Absolute paths (relative ones are resolved against the working directory). */
  readonly certFile: string;
  readonly keyFile: string;
  /** null: the key is not encrypted. */
  readonly passphrase: string | null;
  /** Lower-case DNS names it serves: its subjectAltName's, or its CN when it has none. */
  readonly names: readonly string[];
  /** The certificate's notAfter, ms since the epoch. */
  readonly notAfterMs: number;
  /** SHA-256 fingerprint of the certificate: a reload swaps a listener whose files changed. */
  readonly fingerprint: string;
  /** The key's type as node:crypto names it ('ec', 'rsa', 'ed25519', ...). */
  readonly keyType: string;
}

/** `listen[i].tls`: terminate TLS on this listener. */
export interface ListenerTlsConfig {
  /** At least one; the first serves clients that send no server name, or an unknown one. */
  readonly certificates: readonly CertificateConfig[];
  readonly minVersion: '1.2' | '1.3';
  /** OpenSSL cipher list for TLS 1.2 (TLS 1.3's suites are BoringSSL's own); null: the default. */
  readonly ciphers: string | null;
  /** Strict-Transport-Security max-age in seconds; null: no HSTS header. */
  readonly hstsSeconds: number | null;
}

/** One address the workers accept clients on. */
export interface ListenerConfig {
  readonly host: string;
  readonly port: number;
  /** null: plain HTTP. */
  readonly tls: ListenerTlsConfig | null;
  /** `redirect_https`: answer every request with 308 to https on this port; null: proxy. */
  readonly redirectHttps: number | null;
  /** `acme_webroot` of a redirect listener: /.well-known/acme-challenge/* is served from it. */
  readonly acmeWebroot: string | null;
}

export interface Config {
  /** At least one; `listen: {host, port}` in the file is a list of one. */
  readonly listen: readonly ListenerConfig[];
  /** Resolved: 'auto' becomes os.availableParallelism(). */
  readonly workers: number;
  readonly log: {
    readonly level: LogLevel;
    readonly access: boolean;
    /** Absolute path (relative ones are resolved against the working directory); null = stdout. */
    readonly file: string | null;
  };
  readonly timeouts: {
    readonly connectMs: number;
    readonly responseMs: number;
    readonly idleMs: number;
    /** How long a request waits when every backend is at max_connections_per_backend (default 1s). */
    readonly queueMs: number;
    /** How long SIGTERM waits for in-flight requests before closing them (default 10s). */
    readonly drainMs: number;
    /** How long a proxied WebSocket's client may stay silent (uWS pings it meanwhile); 0: no limit. */
    readonly websocketIdleMs: number;
  };
  /** `max_body: 0` (no limit) becomes Number.MAX_SAFE_INTEGER; maxConnectionsPerBackend 0 = no limit. */
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxConnectionsPerBackend: number;
    /** Largest WebSocket message either way (uWS's maxPayloadLength; the backend side's limit). */
    readonly websocketMessageBytes: number;
  };
  /**
   * Append the client's address to X-Forwarded-For (default true). Off, an incoming
   * X-Forwarded-For passes unchanged and the address is not read (uWS reads it with a
   * getpeername() per request: about 9% of the CPU of a tiny proxied request, measured).
   */
  readonly forwardedFor: boolean;
  /**
   * Absolute path of the file that keeps drains, weight overrides and passive ejections across
   * restarts (`state_file`); null: none (default).
   */
  readonly stateFile: string | null;
  /** The DNS server for `discover:` pools; null: the system's (/etc/resolv.conf). */
  readonly resolver: ResolverConfig | null;
  readonly pools: readonly PoolConfig[];
  /** In match order. With one pool and no routes in the file, one catch-all route to it. */
  readonly routes: readonly RouteConfig[];
  /** The admin server (metrics, status, actions, dashboard); null: none (`admin:` absent). */
  readonly admin: AdminConfig | null;
  /** The shared response cache; null: none (`cache:` absent). */
  readonly cache: CacheConfig | null;
}

export interface AdminConfig {
  /** Default 127.0.0.1; a non-loopback host requires a token. */
  readonly host: string;
  readonly port: number;
  /** Every request must carry `Authorization: Bearer <token>`; null: no token asked. */
  readonly token: string | null;
}

/** One thing wrong (or, as a warning, worth knowing) in a config file, located in it (1-based line and column). */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted path of the field, e.g. `pools.web.backends[1].weight`; '' for the document. */
  readonly path: string;
  readonly message: string;
}

export type LoadResult =
  /** `text`: the source that gave `config` (the supervisor restarts a data plane from it). */
  | { readonly ok: true; readonly config: Config; readonly text: string; readonly warnings: readonly ConfigProblem[] }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };
