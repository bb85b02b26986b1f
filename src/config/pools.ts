// Owns the `pools` and `routes` sections: pool names, algorithms, backends (with the URL
// shorthand and duplicate detection) and routes (host / path prefix -> pool, in match order).
// A pool's health, passive, slow_start and retry settings are read by pool-settings.ts; its
// algorithm's options and sticky settings by balancing-settings.ts; its discover section
// (instead of backends) by discover-settings.ts.

import { ALGORITHM_OPTION_KEYS, ALGORITHMS, DEFAULT_ALGORITHM, type Algorithm } from '../balancer/registry.js';
import { normaliseBackendUrl } from './backend-url.js';
import { validateBalancingSettings } from './balancing-settings.js';
import { validateCacheSwitch } from './cache-settings.js';
import { validateDiscover } from './discover-settings.js';
import { isPoolName, normaliseRouteHost } from './names.js';
import { validatePoolSettings } from './pool-settings.js';
import { validateUpstreamTls } from './upstream-tls.js';
import type { BackendConfig, PoolConfig, RouteConfig } from './types.js';
import type { Field, Walk } from './walk.js';

export const POOL_KEYS: readonly string[] = [
  'algorithm',
  'backends',
  'health',
  'passive',
  'slow_start',
  'retries',
  'retry_budget',
  ...ALGORITHM_OPTION_KEYS,
  'sticky',
  'discover',
  'tls',
  'cache',
];
export const BACKEND_KEYS = ['url', 'weight'] as const;
export const ROUTE_KEYS = ['host', 'path_prefix', 'pool', 'cache'] as const;
export const MAX_WEIGHT = 1000;

export interface PoolsResult {
  /** The pools that validated, in file order. */
  readonly pools: PoolConfig[];
  /** Every pool name in the file, valid or not, so routes to a broken pool are not reported twice. */
  readonly names: readonly string[];
}

/** `missing`: the file has no `pools` key at all; `hasCache`: the file has a `cache` section. */
export function validatePools(walk: Walk, f: Field, missing: boolean, hasCache = false): PoolsResult | undefined {
  if (missing) {
    walk.report(f.at, f.path, 'is required: define at least one pool of backends');
    return undefined;
  }
  if (walk.isNull(f)) {
    walk.report(f.at, f.path, 'must define at least one pool, got nothing');
    return undefined;
  }
  const entries = walk.map(f, null);
  if (entries === undefined) return undefined;
  if (entries.size === 0) {
    walk.report(f.at, f.path, 'must define at least one pool, got an empty mapping');
    return undefined;
  }
  const pools: PoolConfig[] = [];
  for (const [name, pf] of entries) {
    if (!isPoolName(name)) {
      walk.report(pf.key, pf.path, `pool name ${JSON.stringify(name)} may only use letters, digits, '_', '.' and '-'`);
    }
    const pool = validatePool(walk, name, pf, hasCache);
    if (pool !== undefined) pools.push(pool);
  }
  return { pools, names: [...entries.keys()] };
}

function validatePool(walk: Walk, name: string, f: Field, hasCache: boolean): PoolConfig | undefined {
  const e = walk.map(f, POOL_KEYS);
  if (e === undefined) return undefined;
  const cache = validateCacheSwitch(walk, e.get('cache'), hasCache);
  const algorithm = validateAlgorithm(walk, e.get('algorithm'));
  // Read before the backends, whose checks end early, so that mistakes here are reported too.
  const settings = validatePoolSettings(walk, e);
  const balancing = validateBalancingSettings(walk, e, algorithm);
  const backendsField = e.get('backends');
  const discoverField = e.get('discover');
  if (discoverField !== undefined) {
    if (backendsField !== undefined) {
      walk.report(discoverField.key, discoverField.path, 'goes instead of backends, not with them: a pool lists its backends or finds them by DNS');
      return undefined;
    }
    const discover = validateDiscover(walk, discoverField);
    if (discover === undefined) return undefined;
    const tlsField = e.get('tls');
    if (tlsField !== undefined) {
      // discovered backends are http://IP:PORT: there is no https backend for tls to apply to
      walk.report(tlsField.key, tlsField.path, 'applies to https:// backends; a discover pool finds http backends');
      return undefined;
    }
    return { name, algorithm: algorithm ?? DEFAULT_ALGORITHM, backends: [], ...settings, ...balancing, discover, tls: null, cache };
  }
  if (backendsField === undefined) {
    walk.report(f.at, `${f.path}.backends`, 'is required: list at least one backend URL (or find them by DNS with discover)');
    return undefined;
  }
  const items = walk.list(backendsField);
  if (items === undefined) return undefined;
  if (items.length === 0) {
    walk.report(backendsField.at, backendsField.path, 'must list at least one backend');
    return undefined;
  }
  const backends: BackendConfig[] = [];
  const seen = new Map<string, Field>();
  let ok = true;
  for (const item of items) {
    const b = validateBackend(walk, item, seen);
    if (b === undefined) ok = false;
    else backends.push(b);
  }
  const tls = validateUpstreamTls(walk, e.get('tls'), backends);
  if (tls === undefined) return undefined;
  // A wrong algorithm has been reported, so the load fails: the stand-in is never used.
  return ok ? { name, algorithm: algorithm ?? DEFAULT_ALGORITHM, backends, ...settings, ...balancing, discover: null, tls, cache } : undefined;
}

/** Absent: the default (round-robin). Undefined after reporting. */
function validateAlgorithm(walk: Walk, f: Field | undefined): Algorithm | undefined {
  if (f === undefined) return DEFAULT_ALGORITHM;
  const expected = `one of ${ALGORITHMS.join(', ')}`;
  const v = walk.scalar(f, expected);
  if (v === undefined) return undefined;
  return ALGORITHMS.find((a) => a === v) ?? walk.mismatch(f, expected, v);
}

/** `seen`: normalised URL -> where it first appeared in this pool. */
function validateBackend(walk: Walk, item: Field, seen: Map<string, Field>): BackendConfig | undefined {
  const f = walk.resolved(item);
  if (f === undefined) return undefined;
  // Shorthand: anything that is not a mapping is read as a bare URL, so a number or null gets
  // "expected a backend URL" rather than a message about mappings.
  let urlField: Field = f;
  let weight: number | undefined = 1;
  if (walk.isMapping(f)) {
    const e = walk.map(f, BACKEND_KEYS);
    if (e === undefined) return undefined;
    const u = e.get('url');
    if (u === undefined) {
      walk.report(f.at, `${f.path}.url`, 'is required');
      return undefined;
    }
    urlField = u;
    const w = e.get('weight');
    if (w !== undefined) weight = walk.integer(w, 1, MAX_WEIGHT); // the URL is still checked
  }
  const raw = walk.string(urlField, 'a backend URL like "http://127.0.0.1:3001"');
  if (raw === undefined) return undefined;
  const addr = normaliseBackendUrl(raw);
  if (typeof addr === 'string') {
    walk.report(urlField.at, urlField.path, addr);
    return undefined;
  }
  const first = seen.get(addr.url);
  if (first !== undefined) {
    walk.report(urlField.at, urlField.path, `duplicate backend ${addr.url} (first at ${first.path}, line ${walk.position(first.at).line})`);
    return undefined;
  }
  seen.set(addr.url, urlField);
  if (weight === undefined) return undefined;
  return { url: addr.url, host: addr.host, port: addr.port, weight };
}

/**
 * The routes in match order. Absent (or empty-valued) with exactly one pool: one catch-all
 * route to it. `poolsField` is where to point when routes are required but missing.
 */
export function validateRoutes(
  walk: Walk,
  f: Field | undefined,
  pools: PoolsResult | undefined,
  poolsField: (Field & { key: unknown }) | undefined,
  hasCache = false,
): RouteConfig[] | undefined {
  const names = pools?.names ?? [];
  if (f === undefined || walk.isNull(f)) {
    const only = names[0];
    if (names.length === 1 && only !== undefined) return [{ host: null, pathPrefix: '/', pool: only, cache: false }];
    if (names.length > 1) {
      walk.report(poolsField?.key ?? null, 'routes', `is required when there is more than one pool (pools: ${names.join(', ')})`);
    }
    return undefined;
  }
  const items = walk.list(f);
  if (items === undefined) return undefined;
  if (items.length === 0) {
    walk.report(f.at, f.path, 'must list at least one route (or leave routes out when there is only one pool)');
    return undefined;
  }
  const routes: RouteConfig[] = [];
  const seen = new Map<string, Field>();
  let ok = true;
  for (const item of items) {
    const r = validateRoute(walk, item, names, pools !== undefined, hasCache);
    if (r === undefined) {
      ok = false;
      continue;
    }
    const id = `${r.host ?? '*'} ${r.pathPrefix}`;
    const first = seen.get(id);
    if (first !== undefined) {
      walk.report(item.at, item.path, `same host and path_prefix as ${first.path} (line ${walk.position(first.at).line}); it would never match`);
      ok = false;
      continue;
    }
    seen.set(id, item);
    routes.push(r);
  }
  return ok ? routes : undefined;
}

/** `checkPool`: false when the pools section itself was broken, so pool names are unknown. */
function validateRoute(walk: Walk, f: Field, names: readonly string[], checkPool: boolean, hasCache: boolean): RouteConfig | undefined {
  const e = walk.map(f, ROUTE_KEYS);
  if (e === undefined) return undefined;
  let ok = true;
  let host: string | null = null;
  const hostField = e.get('host');
  if (hostField !== undefined && !walk.isNull(hostField)) {
    const raw = walk.string(hostField, 'a host name');
    if (raw === undefined) ok = false;
    else {
      const r = normaliseRouteHost(raw);
      if (typeof r === 'string') {
        walk.report(hostField.at, hostField.path, r);
        ok = false;
      } else host = r.host;
    }
  }
  let pathPrefix = '/';
  const prefixField = e.get('path_prefix');
  if (prefixField !== undefined) {
    const raw = walk.string(prefixField, 'a path starting with "/"');
    if (raw === undefined) ok = false;
    else if (!raw.startsWith('/')) {
      walk.report(prefixField.at, prefixField.path, `must start with "/", got ${JSON.stringify(raw)}`);
      ok = false;
    } else if (/[\s?#]/.test(raw)) {
      walk.report(prefixField.at, prefixField.path, `must not contain blanks, "?" or "#", got ${JSON.stringify(raw)}`);
      ok = false;
    } else pathPrefix = raw;
  }
  const poolField = e.get('pool');
  let pool: string | undefined;
  if (poolField === undefined) {
    walk.report(f.at, `${f.path}.pool`, 'is required: the name of the pool this route sends requests to');
    ok = false;
  } else {
    pool = walk.string(poolField, 'a pool name');
    if (pool === undefined) ok = false;
    else if (checkPool && !names.includes(pool)) {
      walk.report(poolField.at, poolField.path, `unknown pool ${JSON.stringify(pool)}; pools: ${names.join(', ')}`);
      ok = false;
    }
  }
  const cache = validateCacheSwitch(walk, e.get('cache'), hasCache);
  return ok && pool !== undefined ? { host, pathPrefix, pool, cache } : undefined;
}
