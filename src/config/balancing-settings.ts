// Owns a pool's balancing settings: the options its algorithm owns (each algorithm parses its
// own, see src/balancer/; an algorithm's key set on a pool of another algorithm is a problem) and
// sticky sessions (`sticky`, any algorithm). Each reader returns the default after reporting a
// problem; the load fails on any problem, so the value is unused.

import { ALGORITHM_SPECS, type AlgorithmSettings } from '../balancer/registry.js';
import type { AlgorithmSpec } from '../balancer/types.js';
import { isToken, TOKEN_CHARS } from './names.js';
import type { Algorithm, StickyConfig } from './types.js';
import { parseDuration } from './units.js';
import type { Entries, Field, Walk } from './walk.js';

export const STICKY_KEYS = ['cookie', 'ttl'] as const;
/** Browsers keep a cookie at most 400 days (RFC 6265bis), whatever its Max-Age says. */
export const MAX_STICKY_TTL_MS = 400 * 24 * 3_600_000;
/** Sticky cookie lifetime when `ttl` is absent. */
const STICKY_TTL_MS = 3_600_000;

export type BalancingSettings = AlgorithmSettings & { readonly sticky: StickyConfig | null };

/**
 * `e`: the pool's entries, keys already checked against POOL_KEYS. `algorithm`: the pool's,
 * undefined when it was wrong (already reported), so that settings are not also reported as
 * belonging to another algorithm.
 */
export function validateBalancingSettings(walk: Walk, e: Entries, algorithm: Algorithm | undefined): BalancingSettings {
  const settings = {};
  for (const spec of ALGORITHM_SPECS) Object.assign(settings, algorithmSettings(walk, e, spec, algorithm));
  return { ...(settings as AlgorithmSettings), sticky: validateSticky(walk, e.get('sticky')) };
}

/** `spec`'s settings for a pool of `algorithm`: parsed when it is the pool's, its `unused` values otherwise. */
function algorithmSettings(walk: Walk, e: Entries, spec: AlgorithmSpec<Algorithm, object>, algorithm: Algorithm | undefined): object {
  const fields = new Map<string, Field & { readonly key: unknown }>();
  for (const key of spec.optionKeys) {
    const f = owned(walk, e, key, spec.name, algorithm);
    if (f !== undefined) fields.set(key, f);
  }
  const parsed = spec.options(walk, fields); // values are checked on any pool
  return spec.name === algorithm ? parsed : spec.unused;
}

/**
 * The field of a key that only `owner` reads. On a pool with another algorithm the key is
 * reported (at the key), and the field is still returned so that its value is checked too.
 */
function owned(walk: Walk, e: Entries, key: string, owner: Algorithm, algorithm: Algorithm | undefined): (Field & { readonly key: unknown }) | undefined {
  const f = e.get(key);
  if (f === undefined || algorithm === undefined || algorithm === owner) return f;
  const uses = e.has('algorithm') ? algorithm : `${algorithm} (the default)`;
  walk.report(f.key, f.path, `only used with algorithm: ${owner}; this pool uses ${uses}`);
  return f;
}

const STICKY_FORMS = 'false or a mapping like { cookie: lb, ttl: 1h }';

/** Absent or false: no sticky sessions. */
function validateSticky(walk: Walk, f: Field | undefined): StickyConfig | null {
  if (f === undefined) return null;
  const r = walk.resolved(f);
  if (r === undefined) return null;
  const cookieRequired = (): null => {
    walk.report(f.at, `${f.path}.cookie`, 'is required: the name of the cookie that keeps a client on its backend');
    return null;
  };
  // An empty value (everything under it commented out) has defaults, but the cookie has none.
  if (walk.isNull(r)) return cookieRequired();
  if (!walk.isMapping(r)) {
    const v = walk.scalar(r, STICKY_FORMS);
    if (v !== false && v !== undefined) walk.mismatch(r, STICKY_FORMS, v);
    return null;
  }
  const e = walk.map(r, STICKY_KEYS);
  if (e === undefined) return null;
  const cookieField = e.get('cookie');
  const cookie = cookieField === undefined ? cookieRequired() : validateCookieName(walk, cookieField);
  const ttlMs = validateStickyTtl(walk, e.get('ttl'));
  return cookie === null ? null : { cookie, ttlMs };
}

function validateCookieName(walk: Walk, f: Field): string | null {
  const cookie = walk.string(f, 'a cookie name');
  if (cookie === undefined) return null;
  if (cookie === '') walk.report(f.at, f.path, 'must not be empty');
  else if (isToken(cookie)) return cookie;
  else walk.report(f.at, f.path, `cookie name (an RFC 6265 token) may only use ${TOKEN_CHARS}, got ${JSON.stringify(cookie)}`);
  return null;
}

/**
 * The cookie's Max-Age: a duration in whole seconds (Max-Age counts seconds), or 0 (or a zero
 * duration) for a session cookie that ends when the browser closes.
 */
function validateStickyTtl(walk: Walk, f: Field | undefined): number {
  const fallback = STICKY_TTL_MS;
  if (f === undefined) return fallback;
  const v = walk.scalar(f, 'a duration like "1h", or 0 for a session cookie');
  if (v === undefined) return fallback;
  if (v === 0) return 0;
  const ms = parseDuration(v);
  if (typeof ms === 'string') walk.report(f.at, f.path, ms);
  else if (ms % 1000 !== 0) {
    walk.report(f.at, f.path, `must be a whole number of seconds (a cookie's Max-Age counts seconds), got ${JSON.stringify(v)}`);
  } else if (ms > MAX_STICKY_TTL_MS) {
    walk.report(f.at, f.path, `must be at most 9600h (400 days, the longest a browser keeps a cookie), got ${JSON.stringify(v)}`);
  } else return ms;
  return fallback;
}
