// Owns the shape of a validated configuration: what every other module may read.
// Values are normalised (durations in ms, sizes in bytes, workers resolved) and deep-frozen.

export type Algorithm = 'round-robin' | 'least-connections';
export const ALGORITHMS: readonly Algorithm[] = ['round-robin', 'least-connections'];

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface BackendConfig {
  /** Normalised URL, the backend's identity across reloads: `http://host:port`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Integer >= 1, default 1. */
  readonly weight: number;
}

export interface PoolConfig {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly backends: readonly BackendConfig[];
}

export interface RouteConfig {
  /** Lower-case host without port, or null to match any host. */
  readonly host: string | null;
  /** Starts with '/'. */
  readonly pathPrefix: string;
  readonly pool: string;
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  /** Resolved: 'auto' becomes os.availableParallelism(). */
  readonly workers: number;
  readonly log: { readonly level: LogLevel; readonly access: boolean };
  readonly timeouts: { readonly connectMs: number; readonly responseMs: number; readonly idleMs: number };
  /** `max_body: 0` (no limit) becomes Number.MAX_SAFE_INTEGER; maxConnectionsPerBackend 0 = no limit. */
  readonly limits: { readonly maxBodyBytes: number; readonly maxConnectionsPerBackend: number };
  readonly pools: readonly PoolConfig[];
  /** In match order. With one pool and no routes in the file, one catch-all route to it. */
  readonly routes: readonly RouteConfig[];
}

/** One thing wrong with a config file, located in it (1-based line and column). */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted path of the field, e.g. `pools.web.backends[1].weight`; '' for the document. */
  readonly path: string;
  readonly message: string;
}

export type LoadResult =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };
