// Owns a pool's balancing settings: the consistent-hash key (`hash_key`) and bounded load
// (`hash_balance_factor`), the ewma decay (`ewma_decay`) and sticky sessions (`sticky`). The
// first three belong to one algorithm each, and set on a pool with another algorithm they are a
// problem. Each reader returns the default after reporting a problem; the load fails on any
// problem, so the value is unused.

import type { Algorithm, HashKey, PoolConfig, StickyConfig } from './types.js';
import { parseDuration } from './units.js';
import type { Entries, Field, Walk } from './walk.js';

export const STICKY_KEYS = ['cookie', 'ttl'] as const;
/** hash_balance_factor: above 100 a backend could take 100 times the average, which bounds nothing. */
export const MAX_HASH_BALANCE_FACTOR = 100;
/** Browsers keep a cookie at most 400 days (RFC 6265bis), whatever its Max-Age says. */
export const MAX_STICKY_TTL_MS = 400 * 24 * 3_600_000;

/** Values used when a key is absent. Durations in ms. */
export const BALANCING_DEFAULTS = Object.freeze({
  /** For consistent-hash pools; other pools have no hash key. */
  hashKey: Object.freeze<HashKey>({ kind: 'path', name: '' }),
  hashBalanceFactor: 0,
  ewmaDecayMs: 10_000,
  stickyTtlMs: 3_600_000,
});

export type BalancingSettings = Pick<PoolConfig, 'hashKey' | 'hashBalanceFactor' | 'ewmaDecayMs' | 'sticky'>;

/**
 * `e`: the pool's entries, keys already checked against POOL_KEYS. `algorithm`: the pool's,
 * undefined when it was wrong (already reported), so that settings are not also reported as
 * belonging to another algorithm.
 */
export function validateBalancingSettings(walk: Walk, e: Entries, algorithm: Algorithm | undefined): BalancingSettings {
  const d = BALANCING_DEFAULTS;
  const hashed = algorithm === 'consistent-hash';
  const hashKeyField = owned(walk, e, 'hash_key', 'consistent-hash', algorithm);
  const hashKey = hashKeyField === undefined ? d.hashKey : (validateHashKey(walk, hashKeyField) ?? d.hashKey);
  const factorField = owned(walk, e, 'hash_balance_factor', 'consistent-hash', algorithm);
  const factor = factorField === undefined ? d.hashBalanceFactor : validateHashBalanceFactor(walk, factorField);
  const decayField = owned(walk, e, 'ewma_decay', 'ewma', algorithm);
  const decayMs = decayField === undefined ? undefined : walk.duration(decayField);
  return {
    hashKey: hashed ? hashKey : null,
    hashBalanceFactor: hashed ? factor : d.hashBalanceFactor,
    ewmaDecayMs: algorithm === 'ewma' ? (decayMs ?? d.ewmaDecayMs) : d.ewmaDecayMs,
    sticky: validateSticky(walk, e.get('sticky')),
  };
}

/**
 * The field of a key that only `owner` reads. On a pool with another algorithm the key is
 * reported (at the key), and the field is still returned so that its value is checked too.
 */
function owned(walk: Walk, e: Entries, key: string, owner: Algorithm, algorithm: Algorithm | undefined): Field | undefined {
  const f = e.get(key);
  if (f === undefined || algorithm === undefined || algorithm === owner) return f;
  const uses = e.has('algorithm') ? algorithm : `${algorithm} (the default)`;
  walk.report(f.key, f.path, `only used with algorithm: ${owner}; this pool uses ${uses}`);
  return f;
}

// RFC 9110 token characters: what a header name is made of, and (RFC 6265) a cookie name.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const TOKEN_CHARS = "letters, digits and !#$%&'*+-.^_`|~";
// A query parameter name as it appears in the URL: the separators and blanks would split it.
const QUERY_NAME_BREAKERS = /[&=#\s\x00-\x1f\x7f]/;

const HASH_KEY_FORMS = 'path, ip, header:NAME, cookie:NAME or query:NAME (like "header:x-user-id")';
const NAME_EXAMPLES = { header: 'x-user-id', cookie: 'session', query: 'user' } as const;

/** `path`, `ip`, or a kind and a name after a colon: `header:x-user-id`. */
function validateHashKey(walk: Walk, f: Field): HashKey | undefined {
  const raw = walk.string(f, HASH_KEY_FORMS);
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const colon = text.indexOf(':');
  const kind = colon === -1 ? text : text.slice(0, colon).trim();
  const name = colon === -1 ? undefined : text.slice(colon + 1).trim();
  if (kind === 'path' || kind === 'ip') {
    if (name === undefined) return { kind, name: '' };
    walk.report(f.at, f.path, `${kind} takes no name, got ${JSON.stringify(raw)}: write hash_key: ${kind}`);
    return undefined;
  }
  if (kind !== 'header' && kind !== 'cookie' && kind !== 'query') return walk.mismatch(f, HASH_KEY_FORMS, raw);
  if (name === undefined || name === '') {
    walk.report(f.at, f.path, `${kind} needs a name after the colon, like ${kind}:${NAME_EXAMPLES[kind]} (got ${JSON.stringify(raw)})`);
    return undefined;
  }
  if (kind === 'query') {
    if (!QUERY_NAME_BREAKERS.test(name)) return { kind, name };
    walk.report(f.at, f.path, `query parameter name must not contain "&", "=", "#" or blanks, got ${JSON.stringify(name)}`);
    return undefined;
  }
  if (TOKEN.test(name)) return { kind, name: kind === 'header' ? name.toLowerCase() : name };
  const what = kind === 'header' ? 'header name (an HTTP token)' : 'cookie name (an RFC 6265 token)';
  walk.report(f.at, f.path, `${what} may only use ${TOKEN_CHARS}, got ${JSON.stringify(name)}`);
  return undefined;
}

const FACTOR_FORMS = '0 (off) or a number from 1 to 100, like 1.25';

/** Bounded load: 0 (off), or a backend may take at most this many times the average in-flight. */
function validateHashBalanceFactor(walk: Walk, f: Field): number {
  const fallback = BALANCING_DEFAULTS.hashBalanceFactor;
  const v = walk.scalar(f, FACTOR_FORMS);
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return walk.mismatch(f, FACTOR_FORMS, v) ?? fallback;
  if (v === 0) return 0;
  if (v < 1) {
    walk.report(f.at, f.path, `must be 0 (off) or at least 1, got ${v}: below 1 the backends together could not take the average load`);
  } else if (v > MAX_HASH_BALANCE_FACTOR) {
    walk.report(f.at, f.path, `must be at most ${MAX_HASH_BALANCE_FACTOR}, got ${v}: it is a factor, not a percentage (1.25 lets a backend take 125% of the average)`);
  } else return v;
  return fallback;
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
  else if (TOKEN.test(cookie)) return cookie;
  else walk.report(f.at, f.path, `cookie name (an RFC 6265 token) may only use ${TOKEN_CHARS}, got ${JSON.stringify(cookie)}`);
  return null;
}

/**
 * The cookie's Max-Age: a duration in whole seconds (Max-Age counts seconds), or 0 (or a zero
 * duration) for a session cookie that ends when the browser closes.
 */
function validateStickyTtl(walk: Walk, f: Field | undefined): number {
  const fallback = BALANCING_DEFAULTS.stickyTtlMs;
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
