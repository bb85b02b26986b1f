// Owns RFC 9111's rules for a shared cache, as pure functions: Cache-Control read without regex
// (request and response directives), what may be stored, the freshness lifetime (s-maxage,
// max-age, Expires - Date, or the configured default), the age of a stored answer (Age, the
// response delay and its resident time), and RFC 5861's stale-while-revalidate / stale-if-error
// windows. Times are wall-clock milliseconds (Date.now): every worker must agree on them.

import { TCHAR } from '../http-tokens.js';

/** Directives of one Cache-Control value; seconds as numbers, -1 when absent. */
export interface Directives {
  noStore: boolean;
  /** `no-cache` (qualified or not: a qualified one is read as the unqualified, stricter form). */
  noCache: boolean;
  /** `private` (qualified or not: never stored by a shared cache either way). */
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  /** `proxy-revalidate`: must-revalidate for shared caches. */
  proxyRevalidate: boolean;
  maxAge: number;
  sMaxage: number;
  staleWhileRevalidate: number;
  staleIfError: number;
  /** Request only: `only-if-cached`. */
  onlyIfCached: boolean;
  /** Request only: `max-stale[=N]` (bare: any staleness, 2^31 s); -1 absent. */
  maxStale: number;
  /** Request only: `min-fresh=N`; -1 absent. */
  minFresh: number;
}

export function newDirectives(): Directives {
  return { noStore: false, noCache: false, private: false, public: false, mustRevalidate: false, proxyRevalidate: false, maxAge: -1, sMaxage: -1, staleWhileRevalidate: -1, staleIfError: -1, onlyIfCached: false, maxStale: -1, minFresh: -1 };
}

export function clearDirectives(d: Directives): Directives {
  d.noStore = d.noCache = d.private = d.public = d.mustRevalidate = d.proxyRevalidate = d.onlyIfCached = false;
  d.maxAge = d.sMaxage = d.staleWhileRevalidate = d.staleIfError = d.maxStale = d.minFresh = -1;
  return d;
}

/** Delta-seconds (RFC 9111 §1.2.2) in [start, end), optionally quoted; -1 when it is not one. A
 * value too large to hold is read as 2^31 seconds, as the RFC asks. */
function deltaSeconds(v: string, start: number, end: number): number {
  if (end - start >= 2 && v.charCodeAt(start) === 34 && v.charCodeAt(end - 1) === 34) {
    start++;
    end--;
  }
  if (end <= start) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
    if (n > 2147483648) n = 2147483648;
  }
  return n;
}

/** The directive name [start, end) of `v` equals the lower-case literal `lower`, ignoring case. */
function nameIs(v: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((v.charCodeAt(start + i) | 32) !== lower.charCodeAt(i)) return false;
  return true;
}

function apply(d: Directives, v: string, ns: number, ne: number, vs: number, ve: number): void {
  switch (ne - ns) {
    case 6:
      if (nameIs(v, ns, ne, 'public')) d.public = true;
      return;
    case 7:
      if (nameIs(v, ns, ne, 'max-age')) d.maxAge = vs < 0 ? -1 : deltaSeconds(v, vs, ve);
      else if (nameIs(v, ns, ne, 'private')) d.private = true;
      return;
    case 8:
      if (nameIs(v, ns, ne, 'no-store')) d.noStore = true;
      else if (nameIs(v, ns, ne, 'no-cache')) d.noCache = true;
      else if (nameIs(v, ns, ne, 's-maxage')) d.sMaxage = vs < 0 ? -1 : deltaSeconds(v, vs, ve);
      return;
    case 9:
      if (nameIs(v, ns, ne, 'max-stale')) d.maxStale = vs < 0 ? 2147483648 : deltaSeconds(v, vs, ve);
      else if (nameIs(v, ns, ne, 'min-fresh')) d.minFresh = vs < 0 ? -1 : deltaSeconds(v, vs, ve);
      return;
    case 14:
      if (nameIs(v, ns, ne, 'only-if-cached')) d.onlyIfCached = true;
      else if (nameIs(v, ns, ne, 'stale-if-error')) d.staleIfError = vs < 0 ? -1 : deltaSeconds(v, vs, ve);
      return;
    case 15:
      if (nameIs(v, ns, ne, 'must-revalidate')) d.mustRevalidate = true;
      return;
    case 16:
      if (nameIs(v, ns, ne, 'proxy-revalidate')) d.proxyRevalidate = true;
      return;
    case 22:
      if (nameIs(v, ns, ne, 'stale-while-revalidate')) d.staleWhileRevalidate = vs < 0 ? -1 : deltaSeconds(v, vs, ve);
      return;
  }
}

/**
 * Read one Cache-Control field value into `d` (call again for each line of the field: the
 * directives of all of them apply). Unknown directives are ignored; a malformed element is
 * skipped up to the next comma. A directive given twice with different values keeps the
 * stricter reading for max-age and s-maxage (RFC 9111 §4.2.1: treat as invalid -> stale: 0).
 */
export function parseCacheControl(v: string, d: Directives): Directives {
  const n = v.length;
  let i = 0;
  while (i < n) {
    let c = v.charCodeAt(i);
    if (c === 32 || c === 9 || c === 44) {
      i++;
      continue;
    }
    const ns = i;
    while (i < n && (c = v.charCodeAt(i)) < 256 && TCHAR[c] === 1) i++;
    const ne = i;
    while (i < n && ((c = v.charCodeAt(i)) === 32 || c === 9)) i++;
    let vs = -1;
    let ve = -1;
    if (i < n && v.charCodeAt(i) === 61 /* = */) {
      i++;
      while (i < n && ((c = v.charCodeAt(i)) === 32 || c === 9)) i++;
      vs = i;
      if (i < n && v.charCodeAt(i) === 34) {
        // quoted-string, with quoted-pairs
        for (i++; i < n; i++) {
          c = v.charCodeAt(i);
          if (c === 92) i++;
          else if (c === 34) {
            i++;
            break;
          }
        }
      } else {
        while (i < n && (c = v.charCodeAt(i)) < 256 && TCHAR[c] === 1) i++;
      }
      ve = i;
    }
    if (ne > ns) {
      const maxAge = d.maxAge;
      const sMaxage = d.sMaxage;
      apply(d, v, ns, ne, vs, ve);
      // a repeated max-age / s-maxage with another value: the smaller (RFC 9111 §4.2.1 lets a
      // cache treat conflicting values as stale; the smaller is the safe choice)
      if (maxAge >= 0 && d.maxAge !== maxAge) d.maxAge = d.maxAge < 0 ? 0 : Math.min(maxAge, d.maxAge);
      if (sMaxage >= 0 && d.sMaxage !== sMaxage) d.sMaxage = d.sMaxage < 0 ? 0 : Math.min(sMaxage, d.sMaxage);
    }
    // skip whatever is left of a malformed element
    while (i < n && v.charCodeAt(i) !== 44) i++;
  }
  return d;
}

/** Statuses a cache may store without explicit freshness being needed to make them cacheable by
 * default (RFC 9110 §15.1, "heuristically cacheable"), the ones this cache stores at all. */
export function cacheableStatus(status: number): boolean {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
  }
  return false;
}

/** Why an answer is not stored (for logs and tests); Storable when it may be. */
export const enum Refusal {
  Storable = 0,
  Status = 1,
  NoStore = 2,
  Private = 3,
  SetCookie = 4,
  Authorization = 5,
  VaryStar = 6,
  NoFreshness = 7,
  RequestNoStore = 8,
}

export interface StoreFacts {
  status: number;
  /** The request carried Authorization. */
  authorization: boolean;
  /** The request's own Cache-Control said no-store. */
  requestNoStore: boolean;
  /** The response carries Set-Cookie. */
  setCookie: boolean;
  /** The response's Vary lists `*`. */
  varyStar: boolean;
  /** The response carries a valid or invalid Expires field (invalid is "already expired"). */
  hasExpires: boolean;
}

/**
 * May a shared cache store this answer to a GET (RFC 9111 §3, §3.5)? `defaultTtlMs` > 0 gives
 * answers without explicit freshness a lifetime; 0 keeps them out.
 */
export function storable(f: StoreFacts, d: Directives, defaultTtlMs: number): Refusal {
  if (!cacheableStatus(f.status)) return Refusal.Status;
  if (f.requestNoStore) return Refusal.RequestNoStore;
  if (d.noStore) return Refusal.NoStore;
  if (d.private) return Refusal.Private;
  if (f.setCookie) return Refusal.SetCookie;
  if (f.authorization && !d.public && d.sMaxage < 0 && !d.mustRevalidate) return Refusal.Authorization;
  if (f.varyStar) return Refusal.VaryStar;
  const explicit = d.sMaxage >= 0 || d.maxAge >= 0 || f.hasExpires;
  // no-cache answers are stored and revalidated on every use; they need no lifetime
  if (!explicit && !d.noCache && defaultTtlMs <= 0) return Refusal.NoFreshness;
  return Refusal.Storable;
}

/**
 * The freshness lifetime in ms (RFC 9111 §4.2.1): s-maxage, then max-age, then Expires - Date
 * (Date defaults to the time the answer was received), then `defaultTtlMs`. `expiresMs` is NaN
 * when there is no Expires field, -Infinity when it is invalid ("already expired").
 */
export function freshnessLifetime(d: Directives, expiresMs: number, dateMs: number, defaultTtlMs: number): number {
  if (d.sMaxage >= 0) return d.sMaxage * 1000;
  if (d.maxAge >= 0) return d.maxAge * 1000;
  if (!Number.isNaN(expiresMs)) return Math.max(0, expiresMs - dateMs);
  return defaultTtlMs;
}

/**
 * The corrected initial age in ms (RFC 9111 §4.2.3): the larger of the apparent age (received
 * after its Date) and the Age field plus the time the request took.
 */
export function initialAge(ageSeconds: number, dateMs: number, requestTimeMs: number, responseTimeMs: number): number {
  const apparent = Number.isNaN(dateMs) ? 0 : Math.max(0, responseTimeMs - dateMs);
  const corrected = Math.max(0, ageSeconds) * 1000 + Math.max(0, responseTimeMs - requestTimeMs);
  return Math.max(apparent, corrected);
}

/** The current age in ms of an answer stored at `storedMs` with `initialAgeMs`. */
export function currentAge(initialAgeMs: number, storedMs: number, nowMs: number): number {
  return initialAgeMs + Math.max(0, nowMs - storedMs);
}

/** What may be done with a stored answer now. */
export const enum Use {
  /** Fresh: answer from the store. */
  Fresh = 0,
  /** Stale, inside stale-while-revalidate: answer from the store and refresh in the background. */
  StaleRevalidate = 1,
  /** Stale (or no-cache): ask the backend (conditionally when there is a validator). */
  Stale = 2,
}

/** Entry flags, as stored (store.ts keeps them in one word). */
export const enum EntryFlag {
  NoCache = 1,
  /** must-revalidate or proxy-revalidate: never served stale, stale-if-error included. */
  MustRevalidate = 2,
  HasEtag = 4,
  HasLastModified = 8,
}

/** What the request's own directives allow (RFC 9111 §5.2.1): ms, -1 when absent. */
export interface Tolerance {
  /** `min-fresh`: the answer must stay fresh this much longer. */
  minFreshMs: number;
  /** `max-stale`: a stale answer this much past its freshness will do. */
  maxStaleMs: number;
}

/** No min-fresh, no max-stale. */
export const STRICT: Tolerance = Object.freeze({ minFreshMs: -1, maxStaleMs: -1 });

/**
 * `ageMs` of an entry with `lifetimeMs`, `swrMs` (-1: none), `flags`; `requestNoCache`: the
 * client asked for a check with the backend (no-cache, or max-age=0); `t`: its min-fresh and
 * max-stale.
 */
export function usability(ageMs: number, lifetimeMs: number, swrMs: number, flags: number, requestNoCache: boolean, t: Tolerance = STRICT): Use {
  if (requestNoCache || (flags & EntryFlag.NoCache) !== 0) return Use.Stale;
  if (ageMs + Math.max(0, t.minFreshMs) < lifetimeMs) return Use.Fresh;
  // max-stale: the client takes it stale, unless the answer said must-revalidate
  if (t.maxStaleMs >= 0 && t.minFreshMs < 0 && (flags & EntryFlag.MustRevalidate) === 0 && ageMs < lifetimeMs + t.maxStaleMs) return Use.Fresh;
  if ((flags & EntryFlag.MustRevalidate) === 0 && swrMs > 0 && ageMs < lifetimeMs + swrMs) return Use.StaleRevalidate;
  return Use.Stale;
}

/** May a stale entry answer instead of an error now (RFC 5861 §4, or the configured default)? */
export function servableOnError(ageMs: number, lifetimeMs: number, sieMs: number, flags: number): boolean {
  if ((flags & EntryFlag.MustRevalidate) !== 0) return false;
  return sieMs > 0 && ageMs < lifetimeMs + sieMs;
}

/**
 * An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, which
 * Date.parse reads) in ms; NaN when it is not one.
 */
export function parseHttpDate(v: string): number {
  if (v.length < 20 || v.length > 40) return Number.NaN;
  return Date.parse(v);
}

/** Does an If-None-Match value match `etag` (weak comparison, RFC 9110 §13.1.2)? `*` matches. */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (etag.length === 0) return false;
  const tag = weakless(etag, 0, etag.length);
  const n = ifNoneMatch.length;
  let i = 0;
  while (i < n) {
    let c = ifNoneMatch.charCodeAt(i);
    if (c === 32 || c === 9 || c === 44) {
      i++;
      continue;
    }
    if (c === 42) return true;
    const start = i;
    if (c === 87 && ifNoneMatch.charCodeAt(i + 1) === 47) i += 2; // W/
    if (ifNoneMatch.charCodeAt(i) === 34) {
      i++;
      while (i < n && ifNoneMatch.charCodeAt(i) !== 34) i++;
      i++;
    } else {
      while (i < n && (c = ifNoneMatch.charCodeAt(i)) !== 44 && c !== 32 && c !== 9) i++;
    }
    if (sameOpaque(ifNoneMatch, start, Math.min(i, n), etag, tag)) return true;
  }
  return false;
}

/** Where the opaque tag of the entity-tag [start, end) of `v` begins (after any W/). */
function weakless(v: string, start: number, end: number): number {
  return end - start >= 2 && v.charCodeAt(start) === 87 && v.charCodeAt(start + 1) === 47 ? start + 2 : start;
}

function sameOpaque(a: string, start: number, end: number, etag: string, tagStart: number): boolean {
  const s = weakless(a, start, end);
  if (end - s !== etag.length - tagStart) return false;
  for (let k = 0; k < end - s; k++) if (a.charCodeAt(s + k) !== etag.charCodeAt(tagStart + k)) return false;
  return true;
}
