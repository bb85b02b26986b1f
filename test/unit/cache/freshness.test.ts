// RFC 9111's rules for a shared cache, table-driven: Cache-Control as read (odd spacing, quoted
// values, case, repeats), what is stored, the freshness lifetime in its order, the age of a stored
// answer (RFC 9111 §4.2.3's worked quantities), stale windows (RFC 5861) and ETag matching.
import { describe, expect, it } from 'vitest';
import {
  currentAge,
  EntryFlag,
  etagMatches,
  freshnessLifetime,
  initialAge,
  newDirectives,
  parseCacheControl,
  parseHttpDate,
  Refusal,
  servableOnError,
  storable,
  usability,
  Use,
  type Directives,
  type StoreFacts,
} from '../../../src/cache/freshness.js';

const cc = (...lines: string[]): Directives => {
  const d = newDirectives();
  for (const l of lines) parseCacheControl(l, d);
  return d;
};

describe('parseCacheControl', () => {
  it.each<[string, Partial<Directives>]>([
    ['max-age=60', { maxAge: 60 }],
    ['MAX-AGE=60', { maxAge: 60 }],
    ['public, max-age=60', { public: true, maxAge: 60 }],
    ['  public ,\tmax-age = 60 ', { public: true, maxAge: 60 }],
    ['max-age="60"', { maxAge: 60 }],
    ['s-maxage=10, max-age=60', { sMaxage: 10, maxAge: 60 }],
    ['no-store', { noStore: true }],
    ['no-cache', { noCache: true }],
    ['no-cache="set-cookie, x-a"', { noCache: true }],
    ['private="x-user"', { private: true }],
    ['must-revalidate', { mustRevalidate: true }],
    ['proxy-revalidate', { proxyRevalidate: true }],
    ['max-age=60, stale-while-revalidate=30, stale-if-error=600', { maxAge: 60, staleWhileRevalidate: 30, staleIfError: 600 }],
    ['only-if-cached', { onlyIfCached: true }],
    ['max-stale', { maxStale: 2147483648 }],
    ['max-stale=30, min-fresh=10', { maxStale: 30, minFresh: 10 }],
    ['max-age=abc', { maxAge: -1 }],
    ['max-age=', { maxAge: -1 }],
    ['max-age', { maxAge: -1 }],
    ['max-age=-1', { maxAge: -1 }],
    ['max-age=99999999999999', { maxAge: 2147483648 }],
    ['foo="a, b", max-age=5', { maxAge: 5 }],
    ['x-ext=1;bogus, no-store', { noStore: true }],
    ['maxage=60', { maxAge: -1 }],
    [',,,', {}],
  ])('%j', (value, expected) => {
    expect(cc(value)).toEqual({ ...newDirectives(), ...expected });
  });

  it('reads every line of a field; conflicting max-age keeps the smaller', () => {
    expect(cc('public', 'max-age=60').maxAge).toBe(60);
    expect(cc('max-age=60', 'max-age=10').maxAge).toBe(10);
    expect(cc('max-age=60, max-age=oops').maxAge).toBe(0);
  });
});

const facts = (over: Partial<StoreFacts>): StoreFacts => ({ status: 200, authorization: false, requestNoStore: false, setCookie: false, varyStar: false, hasExpires: false, ...over });

describe('storable (RFC 9111 §3)', () => {
  it.each<[string, Partial<StoreFacts>, string, number, Refusal]>([
    ['200 with max-age', {}, 'max-age=60', 0, Refusal.Storable],
    ['200 with s-maxage', {}, 's-maxage=60', 0, Refusal.Storable],
    ['200 with Expires', { hasExpires: true }, '', 0, Refusal.Storable],
    ['200 without freshness, no default', {}, '', 0, Refusal.NoFreshness],
    ['200 without freshness, default_ttl', {}, '', 5000, Refusal.Storable],
    ['200 no-cache without freshness (revalidated on each use)', {}, 'no-cache', 0, Refusal.Storable],
    ['404 with max-age', { status: 404 }, 'max-age=60', 0, Refusal.Storable],
    ['301', { status: 301 }, 'max-age=60', 0, Refusal.Storable],
    ['302 is not heuristically cacheable here', { status: 302 }, 'max-age=60', 0, Refusal.Status],
    ['206 is never stored', { status: 206 }, 'max-age=60', 0, Refusal.Status],
    ['500', { status: 500 }, 'max-age=60', 0, Refusal.Status],
    ['no-store', {}, 'no-store, max-age=60', 0, Refusal.NoStore],
    ['private', {}, 'private, max-age=60', 0, Refusal.Private],
    ['Set-Cookie', { setCookie: true }, 'max-age=60', 0, Refusal.SetCookie],
    ['Authorization without public', { authorization: true }, 'max-age=60', 0, Refusal.Authorization],
    ['Authorization with public', { authorization: true }, 'public, max-age=60', 0, Refusal.Storable],
    ['Authorization with s-maxage', { authorization: true }, 's-maxage=60', 0, Refusal.Storable],
    ['Authorization with must-revalidate', { authorization: true }, 'must-revalidate, max-age=60', 0, Refusal.Storable],
    ['Vary: *', { varyStar: true }, 'max-age=60', 0, Refusal.VaryStar],
    ['request no-store', { requestNoStore: true }, 'max-age=60', 0, Refusal.RequestNoStore],
  ])('%s', (_name, f, value, ttl, expected) => {
    expect(storable(facts(f), cc(value), ttl)).toBe(expected);
  });
});

describe('freshnessLifetime (RFC 9111 §4.2.1)', () => {
  const date = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
  it.each<[string, string, number, number, number]>([
    ['s-maxage first', 's-maxage=10, max-age=60', date + 3_600_000, 0, 10_000],
    ['then max-age', 'max-age=60', date + 3_600_000, 0, 60_000],
    ['then Expires - Date', '', date + 3_600_000, 0, 3_600_000],
    ['Expires before Date', '', date - 1000, 0, 0],
    ['invalid Expires is already expired', '', -Infinity, 5000, 0],
    ['then default_ttl', '', Number.NaN, 5000, 5000],
    ['max-age=0', 'max-age=0', Number.NaN, 5000, 0],
  ])('%s', (_name, value, expires, ttl, expected) => {
    expect(freshnessLifetime(cc(value), expires, date, ttl)).toBe(expected);
  });
});

describe('age (RFC 9111 §4.2.3)', () => {
  it('apparent age: received after its Date', () => {
    expect(initialAge(0, 1000, 5000, 6000)).toBe(5000);
  });
  it('Age plus the response delay, when larger', () => {
    expect(initialAge(10, 6000, 5000, 6000)).toBe(11_000);
  });
  it('a Date in the future counts as 0', () => {
    expect(initialAge(0, 99_000, 5000, 6000)).toBe(1000);
  });
  it('no Date', () => {
    expect(initialAge(3, Number.NaN, 5000, 5000)).toBe(3000);
  });
  it('resident time adds up', () => {
    expect(currentAge(2000, 10_000, 15_000)).toBe(7000);
    expect(currentAge(2000, 10_000, 9_000)).toBe(2000);
  });
});

describe('usability and stale windows (RFC 9111 §4.2, RFC 5861)', () => {
  it.each<[string, number, number, number, number, boolean, Use]>([
    ['fresh', 1000, 60_000, -1, 0, false, Use.Fresh],
    ['exactly at the lifetime is stale', 60_000, 60_000, -1, 0, false, Use.Stale],
    ['stale, inside stale-while-revalidate', 70_000, 60_000, 30_000, 0, false, Use.StaleRevalidate],
    ['stale, past stale-while-revalidate', 95_000, 60_000, 30_000, 0, false, Use.Stale],
    ['must-revalidate forbids serving stale', 70_000, 60_000, 30_000, EntryFlag.MustRevalidate, false, Use.Stale],
    ['no-cache: always revalidated', 0, 60_000, -1, EntryFlag.NoCache, false, Use.Stale],
    ['request no-cache', 0, 60_000, -1, 0, true, Use.Stale],
  ])('%s', (_n, age, life, swr, flags, reqNoCache, expected) => {
    expect(usability(age, life, swr, flags, reqNoCache)).toBe(expected);
  });

  it.each<[string, number, number, number, number, number, Use]>([
    ['min-fresh: fresh for long enough', 1000, 60_000, 0, 30_000, -1, Use.Fresh],
    ['min-fresh: not fresh for long enough', 40_000, 60_000, 0, 30_000, -1, Use.Stale],
    ['max-stale=30s: 10 s stale will do', 70_000, 60_000, 0, -1, 30_000, Use.Fresh],
    ['max-stale=30s: 40 s stale will not', 100_000, 60_000, 0, -1, 30_000, Use.Stale],
    ['max-stale, but must-revalidate', 70_000, 60_000, EntryFlag.MustRevalidate, -1, 30_000, Use.Stale],
    ['max-stale, but no-cache', 0, 60_000, EntryFlag.NoCache, -1, 30_000, Use.Stale],
  ])('the request\'s tolerance: %s', (_n, age, life, flags, minFresh, maxStale, expected) => {
    expect(usability(age, life, -1, flags, false, { minFreshMs: minFresh, maxStaleMs: maxStale })).toBe(expected);
  });

  it.each<[string, number, number, number, number, boolean]>([
    ['inside stale-if-error', 70_000, 60_000, 600_000, 0, true],
    ['past stale-if-error', 700_000, 60_000, 600_000, 0, false],
    ['none configured', 70_000, 60_000, 0, 0, false],
    ['must-revalidate', 70_000, 60_000, 600_000, EntryFlag.MustRevalidate, false],
  ])('servableOnError: %s', (_n, age, life, sie, flags, expected) => {
    expect(servableOnError(age, life, sie, flags)).toBe(expected);
  });
});

describe('dates and validators', () => {
  it.each<[string, number]>([
    ['Sun, 06 Nov 1994 08:49:37 GMT', 784111777000],
    ['Sunday, 06-Nov-94 08:49:37 GMT', 784111777000],
    ['Sun Nov  6 08:49:37 1994', Date.parse('Sun Nov  6 08:49:37 1994')],
    ['0', Number.NaN],
    ['not a date at all, really not', Number.NaN],
  ])('parseHttpDate(%j)', (v, expected) => {
    expect(parseHttpDate(v)).toBe(expected);
  });

  it.each<[string, string, boolean]>([
    ['"abc"', '"abc"', true],
    ['W/"abc"', '"abc"', true],
    ['"abc"', 'W/"abc"', true],
    ['"x", "abc"', '"abc"', true],
    ['"x",W/"abc"', '"abc"', true],
    ['*', '"abc"', true],
    ['"abcd"', '"abc"', false],
    ['"ab"', '"abc"', false],
    ['', '"abc"', false],
    ['"abc"', '', false],
  ])('etagMatches(%j, %j)', (inm, etag, expected) => {
    expect(etagMatches(inm, etag)).toBe(expected);
  });
});
