// Owns the cache's place in a proxied request (CachingPhases, used only when the config has a
// `cache` section): the lookup in requestFilter (a fresh hit is answered there, without a
// backend; a miss waits for another request's fill of the same key, in any worker; a stale entry
// is revalidated with its validators or served while one background request refreshes it), the
// storing in responseFilter (RFC 9111's rules in freshness.ts, the body teed into the store as it
// streams), a 304 that refreshes a stored answer, and stale-if-error in place of a failure.

import type { CacheConfig } from '../config/types.js';
import { ProxyError } from '../errors.js';
import { listElements } from '../http-tokens.js';
import { Phase, ProxyExchange, type ResponseTee } from '../proxy/exchange.js';
import type { Generation } from '../proxy/generation.js';
import type { Downstream, FieldVisitor } from '../proxy/downstream.js';
import { DefaultPhases } from '../proxy/phases.js';
import { dropField } from '../proxy/response-head.js';
import { bytesEqualLower, type ResponseHead } from '../upstream/response-parser.js';
import {
  clearDirectives,
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
  STRICT,
  storable,
  usability,
  Use,
  type StoreFacts,
  type Tolerance,
} from './freshness.js';
import { CacheStore, hashKey, newCursor, Result, RESULT_NAMES, State, variantOf, type CacheKey, type Cursor, type EntryTimes, type FieldSource } from './store.js';

const NO_RESULT = -1;

/** Atomics.waitAsync (Node 16+; typed from ES2024's lib, which this project does not use). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** Request fields read back from the upstream head (names lower-case, "name: value\r\n"). */
class HeadFields implements FieldSource {
  constructor(private readonly head: string) {}
  header(lowerName: string): string {
    return storedField(this.head, lowerName);
  }
}

/**
 * A client that is not there: a background refresh's request (the fields captured from the
 * request that found the entry stale), and the sink of a backend answer that a stored one
 * replaced. Writes go nowhere.
 */
export class DetachedDownstream implements Downstream {
  private offset = 0;
  constructor(
    private readonly target: string,
    private readonly search: string | undefined,
    private readonly fields: readonly string[],
    /** The stale entry a refresh is for (its refresh flag is cleared when it ends), or -1. */
    readonly refreshOf: number,
  ) {}
  method(): string {
    return 'GET';
  }
  url(): string {
    return this.target;
  }
  query(): string | undefined {
    return this.search;
  }
  queryParameter(): string | undefined {
    return undefined;
  }
  header(lowerName: string): string {
    const f = this.fields;
    for (let i = 0; i < f.length; i += 2) if (f[i] === lowerName) return f[i + 1]!;
    return '';
  }
  forEachField(visit: FieldVisitor): void {
    const f = this.fields;
    for (let i = 0; i < f.length; i += 2) visit(f[i]!, f[i + 1]!);
  }
  clientAddress(): string {
    return '';
  }
  listenerFields(): string {
    return '';
  }
  onAborted(): void {}
  onData(): void {}
  onWritable(): void {}
  cork(fn: () => void): void {
    fn();
  }
  writeHead(): void {}
  writeHeader(): void {}
  write(chunk: Uint8Array): boolean {
    this.offset += chunk.length;
    return true;
  }
  writeFits(): boolean {
    return true;
  }
  tryEnd(chunk: Uint8Array, total: number): [boolean, boolean] {
    this.offset += chunk.length;
    return [true, this.offset >= total];
  }
  end(): void {}
  endWithoutBody(): void {}
  writeOffset(): number {
    return this.offset;
  }
  pause(): void {}
  resume(): void {}
  close(): void {}
  answerAndClose(): void {}
}

/** Where a backend's answer goes once the client was answered from the store. */
function discard(): DetachedDownstream {
  return new DetachedDownstream('/', undefined, [], -1);
}

/** The cache's state of one request that looked up and missed, waits, revalidates or fills. */
export class CacheRequest implements ResponseTee {
  readonly key: CacheKey;
  /** A stored entry kept pinned for this request (to revalidate, or to stand in for an error). */
  slot = -1;
  /** The entry being filled with this request's answer, or -1. */
  fill = -1;
  readonly w: Cursor = newCursor();
  /** Bytes of the fill before its body (key, Vary names, head), and its body so far. */
  headLen = 0;
  bodyLen = 0;
  flags = 0;
  times: EntryTimes = { storedAt: 0, initialAge: 0, lifetime: 0, swr: -1, sie: -1 };
  /** When the request was sent on (for the age of its answer). */
  readonly requestTime: number;
  /** Conditional fields this request added to revalidate `slot` ('' when none). */
  validators = '';
  waited = false;
  /** The request's own Cache-Control said no-cache (or max-age=0): stored answers are checked. */
  noCache = false;
  /** The stale entry a background refresh is for, or -1. */
  refreshOf = -1;

  constructor(
    private readonly store: CacheStore,
    readonly maxObject: number,
    host: string,
    target: string,
    lo: number,
    hi: number,
  ) {
    this.key = { host, target, lo, hi };
    this.requestTime = Date.now();
  }

  chunk(bytes: Uint8Array): void {
    if (this.fill < 0) return;
    this.bodyLen += bytes.length;
    if (this.bodyLen > this.maxObject || !this.store.append(this.fill, this.w, bytes)) this.dropFill();
  }
  end(): void {
    if (this.fill < 0) return;
    this.store.commit(this.fill, this.headLen, this.bodyLen, this.flags, this.times);
    this.fill = -1;
  }
  drop(): void {
    this.dropFill();
  }
  dropFill(): void {
    if (this.fill < 0) return;
    this.store.abandon(this.fill);
    this.fill = -1;
  }
  /** The request is over: nothing of the store stays held for it. */
  release(): void {
    this.dropFill();
    if (this.slot >= 0) {
      this.store.unpin(this.slot);
      this.slot = -1;
    }
    if (this.refreshOf >= 0) {
      this.store.endRefresh(this.refreshOf);
      this.refreshOf = -1;
    }
  }
}

/** A hit writer that finished its answer, for the next hit of the thread. */
let spareWriter: HitWriter | null = null;

/** Reused by every request of the thread: read synchronously, never kept. */
const lookupKey: CacheKey = { host: '', target: '', lo: 0, hi: 0 };

/** RFC 9110 §9.2.1's safe methods; any other (unknown ones too) may change the target. */
function isSafe(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE';
}

/** Fill `key` with the request's host and target (path and query), hashed. */
function keyOf(down: Downstream, path: string, key: CacheKey): CacheKey {
  key.host = down.header('host').toLowerCase();
  const query = down.query();
  key.target = query === undefined ? path : path + '?' + query;
  hashKey(key);
  return key;
}
const reqCc = newDirectives();
const resCc = newDirectives();
const times: EntryTimes = { storedAt: 0, initialAge: 0, lifetime: 0, swr: -1, sie: -1 };
const facts: StoreFacts = { status: 0, authorization: false, requestNoStore: false, setCookie: false, varyStar: false, hasExpires: false };
let scratch = Buffer.allocUnsafe(16 * 1024);
function scratchOf(n: number): Buffer {
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2));
  return scratch;
}

/** What a backend's response head says about caching, read once per cacheable response. */
interface ResponseFacts {
  ageSeconds: number;
  date: string;
  expires: string | null;
  vary: string;
  etag: boolean;
  lastModified: boolean;
  setCookie: boolean;
  cacheControl: boolean;
}
const seen: ResponseFacts = { ageSeconds: 0, date: '', expires: null, vary: '', etag: false, lastModified: false, setCookie: false, cacheControl: false };

/** Phases with the shared response cache; only made when the config has a `cache` section. */
export class CachingPhases extends DefaultPhases {
  /** Counter rows of the pools of a generation, by pool index (claimed by name in the store). */
  private readonly rows = new WeakMap<Generation, Int32Array>();
  private lastGen: Generation | null = null;
  private lastRows: Int32Array = new Int32Array(0);

  constructor(private readonly store: CacheStore) {
    super();
  }

  /** Count a result of request `x` on its pool's row. */
  private count(x: ProxyExchange, r: Result): void {
    const gen = x.gen;
    let rows = this.lastRows;
    if (gen !== this.lastGen) {
      rows = this.rows.get(gen) ?? this.rowsOf(gen);
      this.lastGen = gen;
      this.lastRows = rows;
    }
    this.store.count(rows[x.pool]!, r);
  }

  private rowsOf(gen: Generation): Int32Array {
    const rows = Int32Array.from(gen.config.pools, (p) => this.store.counterRow(p.name));
    this.rows.set(gen, rows);
    return rows;
  }

  /** The route this request's lookup matched, for the default filter; -2: none kept. */
  private matched = -2;

  protected override routeOf(x: ProxyExchange, host: string): number {
    const pool = this.matched;
    this.matched = -2;
    return pool === -2 ? super.routeOf(x, host) : pool;
  }

  override requestFilter(x: ProxyExchange, down: Downstream): ProxyError | null {
    try {
      return this.filter(x, down);
    } finally {
      this.matched = -2; // a hit ends without the default filter
    }
  }

  private filter(x: ProxyExchange, down: Downstream): ProxyError | null {
    const gen = x.gen;
    const settings = gen.config.cache;
    if (settings === null) return super.requestFilter(x, down);
    // the route first (made once: the default filter takes it through routeOf): a hit needs nothing else of the
    // request, not even the upstream head
    const router = gen.router;
    const pool = super.routeOf(x, down.header('host'));
    this.matched = pool; // the default filter's own route match takes this (routeOf below)
    if (pool < 0 || !(gen.config.pools[pool]!.cache || router.matchedCache)) return super.requestFilter(x, down);
    const store = this.store;
    const method = x.method;
    if ((method !== 'GET' && method !== 'HEAD') || down.header('content-length').length > 0 || down.header('transfer-encoding').length > 0 || down.header('range').length > 0) {
      if (!isSafe(method)) x.invalidates = keyOf(down, x.path, { host: '', target: '', lo: 0, hi: 0 }); // kept past the handler
      return super.requestFilter(x, down) ?? this.bypass(x);
    }
    clearDirectives(reqCc);
    const cc = down.header('cache-control');
    if (cc.length > 0) parseCacheControl(cc, reqCc);
    if (reqCc.noStore) return super.requestFilter(x, down) ?? this.bypass(x);
    const key = keyOf(down, x.path, lookupKey);
    const refresh = down instanceof DetachedDownstream ? down.refreshOf : -1;
    const noCache = reqCc.noCache || reqCc.maxAge === 0 || refresh >= 0;
    const authorization = down.header('authorization').length > 0;
    let s = authorization ? -1 : store.find(key, down);
    const filling = authorization ? -1 : store.filling;
    if (s >= 0) {
      const now = Date.now();
      store.times(s, times);
      const age = currentAge(times.initialAge, times.storedAt, now);
      const use = usability(age, times.lifetime, times.swr, store.flags[s]!, noCache, toleranceOf(reqCc));
      if (use === Use.Fresh) {
        this.hitRequest(x, down, pool);
        x.cacheResult = Result.Hit;
        this.count(x, Result.Hit);
        this.serve(x, down, s, age, 'corelb; hit', down, true);
        return null;
      }
      if (use === Use.StaleRevalidate && refresh < 0) {
        this.hitRequest(x, down, pool);
        x.cacheResult = Result.Stale;
        this.count(x, Result.Stale);
        if (store.claimRefresh(s)) this.startRefresh(x, down, s);
        this.serve(x, down, s, age, 'corelb; hit; detail=stale-while-revalidate', down, true);
        return null;
      }
    }
    const refused = super.requestFilter(x, down) ?? (reqCc.onlyIfCached ? new ProxyError('CLB_ERR_NOT_CACHED', 'only-if-cached, and no fresh stored answer') : null);
    if (refused !== null) {
      if (s >= 0) store.unpin(s);
      return refused;
    }
    const cr = new CacheRequest(store, settings.maxObjectBytes, key.host, key.target, key.lo, key.hi);
    x.cache = cr;
    x.tee = cr;
    cr.noCache = noCache;
    cr.refreshOf = refresh;
    x.cacheResult = s >= 0 ? Result.Stale : Result.Miss;
    if (s >= 0) {
      // stale: kept for revalidation, and for stale-if-error; its answer replaces it
      cr.slot = s;
      if (down.header('if-none-match').length === 0 && down.header('if-modified-since').length === 0) cr.validators = this.validatorsOf(s);
      if (method === 'GET') {
        cr.fill = store.beginFill(cr.key, cr.w);
        // another request is revalidating it already: its answer will do
        if (cr.fill < 0 && store.filling >= 0 && refresh < 0 && this.waitForFill(x, cr, store.filling, down)) return null;
      }
      return null;
    }
    let wait = filling;
    if (wait < 0 && method === 'GET') {
      cr.fill = store.beginFill(cr.key, cr.w);
      if (cr.fill < 0) wait = store.filling; // another request began the same fill just now
    }
    // another request (in any worker) is fetching this key: wait for its answer (not with
    // Authorization: such a request is never answered from the store)
    if (wait >= 0 && refresh < 0 && !authorization) this.waitForFill(x, cr, wait, down);
    return null;
  }

  /** What a request answered from the store takes of its head (no upstream head is made for it). */
  private hitRequest(x: ProxyExchange, down: Downstream, pool: number): void {
    x.pool = pool;
    x.clientCloses = down.header('connection').length === 5; // uWS's own test for `close`
    // the access log names it: the client's request id, or a new one (only while the log is on)
    if (x.ctx.accessLog) x.requestId = down.header('x-request-id') || x.ctx.newRequestId();
  }

  /**
   * Wait for the fill in `slot` (another request's, in any worker), at most timeouts.response.
   * True when the request was parked, or answered from the filled entry at once.
   */
  private waitForFill(x: ProxyExchange, cr: CacheRequest, slot: number, down: Downstream): boolean {
    cr.waited = true;
    const pending = waitAsync(this.store.state, slot, State.Filling, x.gen.config.timeouts.responseMs);
    if (!pending.async) return this.serveFilled(x, cr, down, down, true);
    x.park();
    (pending.value as Promise<string>).then(
      () => this.afterWait(x, cr),
      (e: unknown) => x.internalError(e),
    );
    return true;
  }

  /** Answer from the entry a fill just made, when there is one for this request and it is fresh. */
  private serveFilled(x: ProxyExchange, cr: CacheRequest, fields: FieldSource, down: Downstream, inHandler: boolean): boolean {
    const store = this.store;
    const s = store.find(cr.key, fields);
    if (s < 0) return false;
    store.times(s, times);
    const age = currentAge(times.initialAge, times.storedAt, Date.now());
    if (usability(age, times.lifetime, times.swr, store.flags[s]!, cr.noCache) !== Use.Fresh) {
      store.unpin(s);
      return false;
    }
    cr.release();
    x.cache = null;
    x.tee = null;
    x.cacheResult = Result.Hit;
    this.count(x, Result.Hit);
    this.serve(x, down, s, age, 'corelb; hit', fields, inHandler);
    return true;
  }

  /** The fill this request waited for is over (stored, dropped, or too slow). */
  private afterWait(x: ProxyExchange, cr: CacheRequest): void {
    if (x.phase !== Phase.Parked) return; // the client left meanwhile
    try {
      if (this.serveFilled(x, cr, new HeadFields(x.head), x.down, false)) return;
      x.proceed(); // not stored (or not a match for this request's variant): to the backend
    } catch (e) {
      x.internalError(e);
    }
  }

  private bypass(x: ProxyExchange): null {
    x.cacheResult = Result.Bypass;
    this.count(x, Result.Bypass);
    return null;
  }

  /** If-None-Match / If-Modified-Since lines for revalidating entry `s` ('' when it has neither). */
  private validatorsOf(s: number): string {
    const flags = this.store.flags[s]!;
    if ((flags & (EntryFlag.HasEtag | EntryFlag.HasLastModified)) === 0) return '';
    const head = this.headText(s);
    let out = '';
    if ((flags & EntryFlag.HasEtag) !== 0) out += 'if-none-match: ' + storedField(head, 'etag') + '\r\n';
    if ((flags & EntryFlag.HasLastModified) !== 0) out += 'if-modified-since: ' + storedField(head, 'last-modified') + '\r\n';
    return out;
  }

  private headText(s: number): string {
    const store = this.store;
    return store.readText(s, store.headStart(s), store.headBytes(s));
  }

  /** One background request refreshes stale entry `s` (stale-while-revalidate). */
  private startRefresh(x: ProxyExchange, down: Downstream, s: number): void {
    const fields: string[] = [];
    down.forEachField((k, v) => {
      fields.push(k, v);
    });
    const refresh = new DetachedDownstream(x.path, down.query(), fields, s);
    const ctx = x.ctx;
    setImmediate(() => {
      try {
        new ProxyExchange(ctx, this, refresh).start();
      } catch (e) {
        this.store.endRefresh(s);
        ctx.log.error({ err: e }, 'cache: background refresh failed to start');
      }
    });
  }

  override upstreamRequest(x: ProxyExchange): string {
    const cr = x.cache;
    if (cr === null || cr.validators.length === 0) return x.head;
    return x.head.slice(0, x.head.length - 2) + cr.validators + '\r\n';
  }

  override responseFilter(x: ProxyExchange, head: ResponseHead, down: Downstream): void {
    const cr = x.cache;
    if (cr === null) {
      // RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the target's stored answers
      if (x.invalidates !== null && head.status < 400) this.store.invalidate(x.invalidates);
      super.responseFilter(x, head, down);
      if (x.cacheResult === Result.Bypass) down.writeHeader('cache-status', 'corelb; fwd=bypass');
      return;
    }
    const store = this.store;
    const status = head.status;
    const settings = x.gen.config.cache!;
    readResponse(head, resCc, seen);
    const now = Date.now();
    if (cr.slot >= 0 && status === 304 && cr.validators.length > 0) {
      // the stored answer is still good: stored again with the 304's fields (RFC 9111 §4.3.4),
      // or, when no fill could be had, made fresh in place; the client gets it
      this.observeResponse(x, head);
      let s = cr.slot;
      store.times(s, times);
      const explicit = resCc.sMaxage >= 0 || resCc.maxAge >= 0 || seen.expires !== null;
      const dateMs = seen.date.length > 0 ? parseHttpDate(seen.date) : Number.NaN;
      if (explicit) times.lifetime = freshnessLifetime(resCc, expiresOf(seen.expires), Number.isNaN(dateMs) ? now : dateMs, 0);
      times.storedAt = now;
      times.initialAge = initialAge(seen.ageSeconds, dateMs, cr.requestTime, now);
      const renewed = cr.fill >= 0 ? this.storeRenewed(cr, head, settings) : -1;
      if (renewed >= 0) s = renewed;
      else {
        cr.dropFill();
        store.refresh(s, times);
      }
      x.cacheResult = Result.Revalidated;
      this.count(x, Result.Revalidated);
      this.serve(x, down, s, times.initialAge, 'corelb; fwd=stale; fwd-status=304', new HeadFields(x.head), false);
      if (renewed >= 0) store.unpin(renewed); // the copy was made in serve
      x.redirectAnswer(discard());
      return;
    }
    if (cr.slot >= 0 && status >= 500 && this.staleWindow(cr, now)) {
      this.observeResponse(x, head);
      cr.dropFill();
      this.serveStale(x, down, cr, now, status);
      x.redirectAnswer(discard());
      return;
    }
    let stored = false;
    if (cr.fill >= 0) {
      stored = this.beginStore(x, cr, head, settings, now);
      if (!stored) cr.dropFill();
    }
    if ((x.cacheResult === Result.Miss || x.cacheResult === Result.Stale) && cr.refreshOf < 0) {
      // counted once the answer is known: a stale entry that had to be fetched again is a miss too
      x.cacheResult = Result.Miss;
      this.count(x, Result.Miss);
    }
    super.responseFilter(x, head, down);
    down.writeHeader('cache-status', cr.slot >= 0 ? (stored ? 'corelb; fwd=stale; stored' : 'corelb; fwd=stale') : stored ? 'corelb; fwd=miss; stored' : 'corelb; fwd=miss');
  }

  private serveStale(x: ProxyExchange, down: Downstream, cr: CacheRequest, now: number, status: number): void {
    const s = cr.slot;
    x.cacheResult = Result.Stale;
    this.count(x, Result.Stale);
    const age = currentAge(times.initialAge, times.storedAt, now);
    this.serve(x, down, s, age, status > 0 ? `corelb; fwd=stale; fwd-status=${status}; detail=stale-if-error` : 'corelb; fwd=stale; detail=stale-if-error', new HeadFields(x.head), false);
  }

  override errorFallback(x: ProxyExchange, _err: ProxyError): boolean {
    const cr = x.cache;
    if (cr === null || cr.slot < 0 || cr.refreshOf >= 0) return false;
    const now = Date.now();
    if (!this.staleWindow(cr, now)) return false;
    cr.dropFill();
    this.serveStale(x, x.down, cr, now, 0);
    return true;
  }

  /**
   * Store the stale entry of `cr` again, into its fill: the stored head with the fields of the
   * 304 `head` in place of its own, the stored body, `times` (set by the caller). Returns the new
   * entry, ready and pinned, or -1 (the fill is dropped).
   */
  private storeRenewed(cr: CacheRequest, head: ResponseHead, settings: CacheConfig): number {
    const store = this.store;
    const old = cr.slot;
    const fill = cr.fill;
    const merged = Buffer.from(mergeFields(this.headText(old), storedHead(head).toString('latin1')), 'latin1');
    let flags = store.flags[old]! & (EntryFlag.HasEtag | EntryFlag.HasLastModified | EntryFlag.NoCache | EntryFlag.MustRevalidate);
    if (seen.etag) flags |= EntryFlag.HasEtag;
    if (seen.lastModified) flags |= EntryFlag.HasLastModified;
    if (seen.cacheControl) {
      // the 304's Cache-Control replaces the stored one
      flags &= EntryFlag.HasEtag | EntryFlag.HasLastModified;
      if (resCc.noCache) flags |= EntryFlag.NoCache;
      if (resCc.mustRevalidate || resCc.proxyRevalidate || resCc.sMaxage >= 0) flags |= EntryFlag.MustRevalidate;
      staleWindows(times, settings);
    }
    const varyLen = store.varyBytes(old);
    const ok =
      store.setVary(fill, cr.w, varyLen === 0 ? '' : store.readText(old, store.keyBytes(old), varyLen), store.variantAt(old)) &&
      store.append(fill, cr.w, merged) &&
      this.copyBody(old, fill, cr.w);
    cr.fill = -1;
    if (!ok) {
      store.abandon(fill);
      return -1;
    }
    store.pin(fill);
    if (!store.commit(fill, merged.length, store.bodyBytes(old), flags, times)) {
      store.unpin(fill);
      return -1;
    }
    return fill;
  }

  /** Append the body of entry `from` to the fill `to` at `w`. */
  private copyBody(from: number, to: number, w: Cursor): boolean {
    const store = this.store;
    const c = newCursor();
    store.seek(from, store.headStart(from) + store.headBytes(from), c);
    for (let left = store.bodyBytes(from); left > 0; ) {
      const v = store.view(c, left);
      if (!store.append(to, w, v)) return false;
      left -= v.length;
    }
    return true;
  }

  /** Is the pinned stale entry of `cr` within its stale-if-error window (`times` is left set)? */
  private staleWindow(cr: CacheRequest, now: number): boolean {
    const store = this.store;
    store.times(cr.slot, times);
    return servableOnError(currentAge(times.initialAge, times.storedAt, now), times.lifetime, times.sie, store.flags[cr.slot]!);
  }

  /**
   * Decide whether the answer is stored; when it is, write its Vary names and head into the
   * fill (the body follows through the tee). False: not storable.
   */
  private beginStore(x: ProxyExchange, cr: CacheRequest, head: ResponseHead, settings: CacheConfig, now: number): boolean {
    const defaultTtlMs = settings.defaultTtlMs;
    const status = head.status;
    facts.status = status;
    facts.authorization = x.head.indexOf('\r\nauthorization: ') >= 0;
    facts.requestNoStore = false;
    facts.setCookie = seen.setCookie;
    let vary = '';
    facts.varyStar = false;
    if (seen.vary.length > 0) {
      const names = listElements(seen.vary);
      if (names !== null) {
        facts.varyStar = names.includes('*');
        vary = names.join(',');
      }
    }
    facts.hasExpires = seen.expires !== null;
    if (storable(facts, resCc, defaultTtlMs) !== Refusal.Storable) return false;
    if (head.length > cr.maxObject) return false;
    const dateMs = seen.date.length > 0 ? parseHttpDate(seen.date) : Number.NaN;
    const t = cr.times;
    t.storedAt = now;
    t.initialAge = initialAge(seen.ageSeconds, dateMs, cr.requestTime, now);
    t.lifetime = freshnessLifetime(resCc, expiresOf(seen.expires), Number.isNaN(dateMs) ? now : dateMs, defaultTtlMs);
    staleWindows(t, settings);
    cr.flags =
      (resCc.noCache ? EntryFlag.NoCache : 0) |
      (resCc.mustRevalidate || resCc.proxyRevalidate || resCc.sMaxage >= 0 ? EntryFlag.MustRevalidate : 0) |
      (seen.etag ? EntryFlag.HasEtag : 0) |
      (seen.lastModified ? EntryFlag.HasLastModified : 0);
    const store = this.store;
    if (!store.setVary(cr.fill, cr.w, vary, vary.length === 0 ? 0 : variantOf(vary, new HeadFields(x.head)))) return false;
    const bytes = storedHead(head);
    if (!store.append(cr.fill, cr.w, bytes)) return false;
    cr.headLen = bytes.length;
    return true;
  }

  /**
   * Answer from pinned entry `s`: its status and fields, Age and Cache-Status, and its body (none
   * for HEAD, 304 to a conditional request it satisfies). Ends the request when the answer is
   * written; under backpressure the rest follows as the client takes it. The pin is released
   * when the request ends (logging), or here when the request had no CacheRequest.
   */
  private serve(x: ProxyExchange, down: Downstream, s: number, ageMs: number, cacheStatus: string, fields: FieldSource, inHandler: boolean): void {
    // a hit owns its pin and streams (x.tee releases it if the request ends first); an answer
    // made while a backend exchange runs on copies its body whole, as the exchange ends soon
    const writer = spareWriter ?? new HitWriter(this.store);
    spareWriter = null;
    writer.reset(x, down, s, x.cache === null);
    if (inHandler) writer.start(ageMs, cacheStatus, fields);
    else down.cork(() => writer.start(ageMs, cacheStatus, fields));
    // written whole (the usual case): the next hit reuses it
    if (writer.finished) spareWriter = writer;
  }

  override logging(x: ProxyExchange): void {
    super.logging(x);
    x.cache?.release();
  }

  protected override accessLine(x: ProxyExchange): Record<string, unknown> {
    const line = super.accessLine(x);
    line.cache = x.cacheResult === NO_RESULT ? null : RESULT_NAMES[x.cacheResult];
    return line;
  }
}

/**
 * Writes one stored answer to a client. A hit (`streams`) owns the lookup's pin and sends the
 * body from shared memory as the client takes it, the pin released when it is written or the
 * request ends (it is the request's tee then). Otherwise the pin is the CacheRequest's, and the
 * body is copied and handed to the front whole.
 */
class HitWriter implements ResponseTee {
  private pinned = false;
  private bodyStart = 0;
  private total = 0;
  private status = 0;
  private readonly cursor = newCursor();
  private x!: ProxyExchange;
  private down!: Downstream;
  private s = -1;
  private streams = false;
  /** The answer is written and the writer holds nothing: it may serve another request. */
  finished = false;

  constructor(private readonly store: CacheStore) {}

  reset(x: ProxyExchange, down: Downstream, s: number, streams: boolean): void {
    this.x = x;
    this.down = down;
    this.s = s;
    this.streams = streams;
    this.pinned = true;
    this.finished = false;
  }

  chunk(): void {}
  end(): void {}
  drop(): void {
    this.release();
  }
  private release(): void {
    if (!this.streams || !this.pinned) return;
    this.pinned = false;
    this.store.unpin(this.s);
  }

  start(ageMs: number, cacheStatus: string, fields: FieldSource): void {
    const store = this.store;
    const s = this.s;
    const x = this.x;
    const down = this.down;
    const headLen = store.headBytes(s);
    const head = scratchOf(headLen);
    const c = this.cursor;
    store.seek(s, store.headStart(s), c);
    for (let n = 0; n < headLen; ) {
      const v = store.view(c, headLen - n);
      head.set(v, n);
      n += v.length;
    }
    const status = (head[0]! - 48) * 100 + (head[1]! - 48) * 10 + (head[2]! - 48);
    this.bodyStart = store.headStart(s) + headLen;
    this.total = store.bodyBytes(s);
    let notModified = false;
    if (status === 200) {
      const inm = fields.header('if-none-match');
      const flags = store.flags[s]!;
      if (inm.length > 0) notModified = (flags & EntryFlag.HasEtag) !== 0 && etagMatches(inm, storedField(head.toString('latin1', 0, headLen), 'etag'));
      else if ((flags & EntryFlag.HasLastModified) !== 0) {
        const ims = fields.header('if-modified-since');
        if (ims.length > 0) {
          const since = parseHttpDate(ims);
          const lm = parseHttpDate(storedField(head.toString('latin1', 0, headLen), 'last-modified'));
          notModified = !Number.isNaN(since) && !Number.isNaN(lm) && lm <= since;
        }
      }
    }
    if (notModified) {
      const eol = head.indexOf(13);
      down.writeHead('304 Not Modified' + (eol < 0 || eol >= headLen ? '' : head.toString('latin1', eol, headLen)));
    } else {
      down.writeHead(head.subarray(0, headLen));
    }
    down.writeHeader('age', String(Math.floor(ageMs / 1000)));
    down.writeHeader('cache-status', cacheStatus);
    if (x.ctx.draining || x.clientCloses) down.writeHeader('connection', 'close');
    if (notModified || x.method === 'HEAD' || status === 204 || status === 304) {
      this.status = notModified ? 304 : status;
      if (notModified || status === 204 || status === 304) down.endWithoutBody();
      else down.endWithoutBody(this.total);
      this.done(0);
      return;
    }
    this.status = status;
    if (this.total === 0) {
      down.end();
      this.done(0);
      return;
    }
    store.seek(s, this.bodyStart, c);
    if (!this.streams) {
      const body = Buffer.allocUnsafe(this.total);
      for (let n = 0; n < this.total; ) {
        const v = store.view(c, this.total - n);
        body.set(v, n);
        n += v.length;
      }
      down.end(body);
      this.done(this.total);
      return;
    }
    if (this.send()) return;
    x.answering(status);
    x.tee = this;
    down.onWritable((offset) => {
      try {
        store.seek(s, this.bodyStart + offset, c);
        return this.send();
      } catch (e) {
        x.internalError(e);
        return true;
      }
    });
  }

  /** Write body bytes from the cursor; true when the answer is complete. */
  private send(): boolean {
    const down = this.down;
    const store = this.store;
    const c = this.cursor;
    for (;;) {
      const at = c.base + c.at - this.bodyStart;
      if (at >= this.total) return true;
      const v = store.view(c, this.total - at);
      const [ok, done] = down.tryEnd(v, this.total);
      if (done) {
        this.done(this.total);
        return true;
      }
      if (!ok) return false;
    }
  }

  private done(bytes: number): void {
    this.release();
    this.finished = true;
    const x = this.x;
    if (this.streams) x.answered(this.status, bytes);
    else {
      // the backend exchange ends the request
      x.status = this.status;
      x.bytesOut = bytes;
    }
  }
}

/** The value of field `name` (lower-case) in a head whose names are lower-case ("...\r\nname: value\r\n..."), or ''. */
function storedField(head: string, name: string): string {
  const at = head.indexOf('\r\n' + name + ': ');
  if (at < 0) return '';
  const start = at + name.length + 4;
  const end = head.indexOf('\r\n', start);
  return head.slice(start, end < 0 ? head.length : end);
}

/** Age's delta-seconds (RFC 9111 §1.2.2: digits only) in bytes [start, end); 0 when it is not one. */
function deltaSeconds(b: Buffer, start: number, end: number): number {
  if (end <= start || end - start > 10) return 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c < 48 || c > 57) return 0;
    n = n * 10 + (c - 48);
  }
  return n;
}

/**
 * A stored head ("200 OK\r\nname: value...", names lower-case) with the field lines of `update`
 * (a 304's head in the same form) in place of the stored lines of the same names.
 */
export function mergeFields(stored: string, update: string): string {
  const fresh = update.split('\r\n').slice(1);
  const names = new Set(fresh.map((l) => l.slice(0, l.indexOf(':'))));
  const lines = stored.split('\r\n');
  const kept = lines.slice(1).filter((l) => !names.has(l.slice(0, l.indexOf(':'))));
  return [lines[0], ...kept, ...fresh].join('\r\n');
}

const tolerance: Tolerance = { minFreshMs: -1, maxStaleMs: -1 };
/** The request's min-fresh and max-stale in ms (STRICT without either: no object filled). */
function toleranceOf(d: typeof reqCc): Tolerance {
  if (d.minFresh < 0 && d.maxStale < 0) return STRICT;
  tolerance.minFreshMs = d.minFresh < 0 ? -1 : d.minFresh * 1000;
  tolerance.maxStaleMs = d.maxStale < 0 ? -1 : d.maxStale * 1000;
  return tolerance;
}

/** The stale windows of the answer `resCc` was read from: its own, else the config's defaults. */
function staleWindows(t: EntryTimes, settings: CacheConfig): void {
  const swr = resCc.staleWhileRevalidate >= 0 ? resCc.staleWhileRevalidate * 1000 : settings.staleWhileRevalidateMs;
  t.swr = swr > 0 ? swr : -1;
  t.sie = resCc.staleIfError >= 0 ? resCc.staleIfError * 1000 : settings.staleIfErrorMs;
}

/** Expires as freshness.ts takes it: NaN absent, -Infinity invalid ("already expired"). */
function expiresOf(v: string | null): number {
  if (v === null) return Number.NaN;
  const ms = parseHttpDate(v);
  return Number.isNaN(ms) ? -Infinity : ms;
}

/** Read the caching fields of a response head into `d` and `out`. */
function readResponse(head: ResponseHead, d: typeof resCc, out: ResponseFacts): void {
  clearDirectives(d);
  out.ageSeconds = 0;
  out.date = '';
  out.expires = null;
  out.vary = '';
  out.etag = false;
  out.lastModified = false;
  out.setCookie = false;
  out.cacheControl = false;
  const b = head.bytes;
  const f = head.fields;
  for (let i = 0; i < head.count; i++) {
    const ns = f[4 * i]!;
    const ne = f[4 * i + 1]!;
    const vs = f[4 * i + 2]!;
    const ve = f[4 * i + 3]!;
    switch (ne - ns) {
      case 3:
        if (bytesEqualLower(b, ns, ne, 'age')) out.ageSeconds = deltaSeconds(b, vs, ve);
        break;
      case 4:
        if (bytesEqualLower(b, ns, ne, 'date')) out.date = b.toString('latin1', vs, ve);
        else if (bytesEqualLower(b, ns, ne, 'vary')) out.vary = out.vary.length === 0 ? b.toString('latin1', vs, ve) : out.vary + ',' + b.toString('latin1', vs, ve);
        else if (bytesEqualLower(b, ns, ne, 'etag')) out.etag = true;
        break;
      case 7:
        if (bytesEqualLower(b, ns, ne, 'expires')) out.expires = b.toString('latin1', vs, ve);
        break;
      case 10:
        if (bytesEqualLower(b, ns, ne, 'set-cookie')) out.setCookie = true;
        break;
      case 13:
        if (bytesEqualLower(b, ns, ne, 'cache-control')) {
          out.cacheControl = true;
          parseCacheControl(b.toString('latin1', vs, ve), d);
        }
        else if (bytesEqualLower(b, ns, ne, 'last-modified')) out.lastModified = true;
        break;
    }
  }
}

/**
 * The head as stored: the status text ("200 OK") and the fields a client is given (as the
 * front passes them on, names lower-cased), without Age (a hit writes its own).
 */
function storedHead(head: ResponseHead): Buffer {
  const b = head.bytes;
  const f = head.fields;
  let n = head.statusEnd - (head.start + 9);
  for (let i = 0; i < head.count; i++) n += f[4 * i + 3]! - f[4 * i]! + 4;
  const out = scratchOf(n);
  let at = b.copy(out, 0, head.start + 9, head.statusEnd);
  for (let i = 0; i < head.count; i++) {
    const ns = f[4 * i]!;
    const ne = f[4 * i + 1]!;
    if (dropField(b, ns, ne, head.connectionTokens) || bytesEqualLower(b, ns, ne, 'age')) continue;
    out[at++] = 13;
    out[at++] = 10;
    for (let k = ns; k < ne; k++) {
      const c = b[k]!;
      out[at++] = c >= 65 && c <= 90 ? c | 32 : c;
    }
    out[at++] = 58;
    out[at++] = 32;
    at += b.copy(out, at, f[4 * i + 2]!, f[4 * i + 3]!);
  }
  return out.subarray(0, at);
}

