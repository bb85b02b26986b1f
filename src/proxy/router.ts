// Owns routing: request host and path -> pool index, first matching route wins.

import type { Config } from '../config/types.js';

interface CompiledRoute {
  readonly host: string | null;
  readonly prefix: string;
  readonly pool: number;
  readonly cache: boolean;
}

export class Router {
  private readonly routes: readonly CompiledRoute[];
  /** Pool of a lone catch-all route: the common case needs no matching at all. */
  private readonly only: number;
  readonly needsHost: boolean;
  /** Whether the route that `match` found last has `cache: true`. */
  matchedCache: boolean;

  constructor(config: Config) {
    const index = new Map(config.pools.map((p, i) => [p.name, i]));
    this.routes = config.routes.map((r) => ({ host: r.host, prefix: r.pathPrefix, pool: index.get(r.pool) ?? -1, cache: r.cache }));
    const first = this.routes[0];
    this.only = this.routes.length === 1 && first !== undefined && first.host === null && first.prefix === '/' ? first.pool : -1;
    this.needsHost = this.routes.some((r) => r.host !== null);
    this.matchedCache = this.only >= 0 && first!.cache;
  }

  /** Pool index for the request, or -1 when no route matches. `host` is lower-case, no port. */
  match(host: string, path: string): number {
    if (this.only >= 0) return this.only;
    for (const r of this.routes) {
      if (r.host !== null && r.host !== host) continue;
      if (path.startsWith(r.prefix)) {
        this.matchedCache = r.cache;
        return r.pool;
      }
    }
    return -1;
  }
}

/** Lower-case host without port, from a Host header value. */
export function normaliseHost(value: string): string {
  let end = value.length;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf(']');
    end = close < 0 ? end : close + 1;
  } else {
    const colon = value.indexOf(':');
    if (colon >= 0) end = colon;
  }
  return value.slice(0, end).toLowerCase();
}
