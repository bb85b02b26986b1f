// Owns `consistent-hash`: a request's key hash picks its backend on the pool's hash ring (built
// by the primary, see ring.ts), so one key goes to one backend in every worker, and a key moves
// only when its own backend cannot take it (or leaves the config). Also its options: `hash_key`
// (what the key is) and `hash_balance_factor` (bounded load).
//
// - The key's home is the owner of the first ring point at or after its hash. When the home is
//   down or draining, is the `avoid` hint, is full (maxInflight) or over the bounded-load cap,
//   the pick walks on clockwise, point by point: the next points belong to backends in
//   proportion to their weights, so a down backend's keys spread over the others by weight, and
//   keys whose home is fine never look at the others.
// - The walk is bounded (PROBES points), then a scan of the pool's backends from a hash-fixed
//   start guarantees that any acceptable backend is found: O(log points + PROBES + backends).
// - Bounded load (hashBalanceFactor f > 0, "consistent hashing with bounded loads", Mirrokni et
//   al.): with T requests in flight on the available backends, backend i's cap is
//   ceil(f * (T + 1) * w_i / W), W the sum of the available backends' configured weights; with
//   equal weights that is ceil(f * (T + 1) / n). A backend at or over its cap is skipped. The
//   cap is a preference: when every acceptable backend is over it, the first one the walk met
//   is taken rather than failing the request. Workers read the counters without a lock, so
//   concurrent picks can overshoot a cap by the number of racing workers at most. Measuring T
//   reads each backend's counter once per keyed pick, so it costs O(backends) only when on.
// - Slow start does not thin a returning backend's keys: consistency matters more than the ramp
//   here (thinning by chance would send one key to two backends), so it takes its keys at once;
//   bounded-load caps use configured weights for the same reason.
// - No key (ctx.hash === -1): weighted round-robin over the pool's shared schedule, exactly as
//   the round-robin algorithm (including its slow-start ramp), so weights are exact.

import type { HashKey } from '../config/types.js';
import type { Field, Walk } from '../config/walk.js';
import { isToken, TOKEN_CHARS } from '../config/names.js';
import type { SharedState } from '../shared/layout.js';
import { buildRing, ringWords, RingReader } from './ring.js';
import { RoundRobin } from './round-robin.js';
import { Schedule, scheduleTable } from './schedule.js';
import { NONE, type AlgorithmSpec, type Balancer, type BackendIndex, type BalancerOptions, type PickContext } from './types.js';

export interface ConsistentHashSettings {
  /** consistent-hash: the key (default path); null for other algorithms. */
  readonly hashKey: HashKey | null;
  /** consistent-hash bounded load: a backend may take at most factor x the average in-flight; 0 = off (default). */
  readonly hashBalanceFactor: number;
}

export const consistentHash: AlgorithmSpec<'consistent-hash', ConsistentHashSettings> = {
  name: 'consistent-hash',
  needs: (pool) => ({ key: true, clientAddress: pool.hashKey?.kind === 'ip' }),
  optionKeys: ['hash_key', 'hash_balance_factor'],
  unused: Object.freeze({ hashKey: null, hashBalanceFactor: 0 }),
  options: (walk, fields) => ({
    hashKey: validateHashKey(walk, fields.get('hash_key')),
    hashBalanceFactor: validateHashBalanceFactor(walk, fields.get('hash_balance_factor')),
  }),
  // The schedule first (requests without a key), then the ring. Backends are placed by URL, so a
  // key keeps its backend across reloads and in every process.
  layout: (backends) => {
    const weights = backends.map((b) => b.weight);
    return [...scheduleTable(weights), ...ringWords(buildRing(backends.map((b) => b.url), weights))];
  },
  create: (state, pool, opts) => new ConsistentHash(state, pool, opts),
};

/** Ring points tried before scanning the backends: ample unless most of the pool is unavailable. */
const PROBES = 32;

export class ConsistentHash implements Balancer {
  private readonly state: SharedState;
  private readonly ring: RingReader;
  private readonly first: number;
  private readonly count: number;
  private readonly size: number;
  private readonly factor: number;
  private readonly noKey: RoundRobin;
  // Per-pick scratch (a worker runs one pick at a time): fields rather than a result object.
  private capLoad = 0; // f * (T + 1), or 0 when bounded load is off
  private capWeight = 1; // W
  private overCap = NONE; // first acceptable backend that was over its cap
  private avoided = NONE; // the avoid hint, when it was otherwise acceptable

  constructor(state: SharedState, pool: number, opts: BalancerOptions) {
    this.state = state;
    this.ring = new RingReader(state, pool, new Schedule(state, pool).end);
    this.first = state.poolFirstBackend(pool);
    this.count = state.poolBackendCount(pool);
    this.size = this.ring.length;
    this.factor = opts.pool.hashBalanceFactor > 0 ? opts.pool.hashBalanceFactor : 0;
    this.noKey = new RoundRobin(state, pool, opts.seed);
  }

  pick(ctx: PickContext): BackendIndex {
    const { state, ring, size } = this;
    if (ctx.hash < 0 || size === 0) return this.noKey.pick(ctx);
    const hash = ctx.hash >>> 0;
    this.overCap = NONE;
    this.avoided = NONE;
    if (this.factor > 0) this.measureLoad();

    let pos = ring.search(hash);
    let last = NONE;
    for (let k = 0; k < PROBES && k < size; k++) {
      const i = ring.owner(pos);
      if (i !== last && this.take(i, ctx)) return i; // a run of one backend's points is judged once
      last = i;
      if (++pos === size) pos = 0;
    }
    // Most of the pool is unavailable: every backend once, from a start fixed by the hash.
    const start = hash % this.count;
    for (let k = 0; k < this.count; k++) {
      const i = this.first + ((start + k) % this.count);
      if (this.take(i, ctx)) return i;
    }
    if (this.overCap !== NONE && state.tryAcquireInflight(this.overCap, ctx.maxInflight)) return this.overCap;
    if (this.avoided !== NONE && state.tryAcquireInflight(this.avoided, ctx.maxInflight)) return this.avoided;
    return NONE;
  }

  /** Takes an in-flight slot on `i` when it may serve this key now; remembers second choices. */
  private take(i: BackendIndex, ctx: PickContext): boolean {
    const state = this.state;
    if (!state.available(i)) return false;
    if (i === ctx.avoid) {
      this.avoided = i;
      return false;
    }
    // ceil(f * (T + 1) * w / W), divided last so that whole caps come out whole
    if (this.capLoad > 0 && state.inflight(i) >= Math.ceil((this.capLoad * state.weight(i)) / this.capWeight)) {
      if (this.overCap === NONE) this.overCap = i;
      return false;
    }
    return state.tryAcquireInflight(i, ctx.maxInflight);
  }

  /** Sets capLoad = f * (T + 1) and capWeight = W over the available backends (capLoad 0: none). */
  private measureLoad(): void {
    const state = this.state;
    let inflight = 0;
    let weight = 0;
    for (let i = this.first; i < this.first + this.count; i++) {
      if (!state.available(i)) continue;
      inflight += state.inflight(i);
      weight += state.weight(i);
    }
    this.capLoad = weight > 0 ? this.factor * (inflight + 1) : 0;
    this.capWeight = weight > 0 ? weight : 1;
  }

  observe(): void {
    // not latency-aware
  }
}

// ---- options

/** Bounded load: above 100 a backend could take 100 times the average, which bounds nothing. */
const MAX_HASH_BALANCE_FACTOR = 100;
const DEFAULT_HASH_KEY: HashKey = Object.freeze({ kind: 'path', name: '' });

// A query parameter name as it appears in the URL: the separators and blanks would split it.
const QUERY_NAME_BREAKERS = /[&=#\s\x00-\x1f\x7f]/;

const HASH_KEY_FORMS = 'path, ip, header:NAME, cookie:NAME or query:NAME (like "header:x-user-id")';
const NAME_EXAMPLES = { header: 'x-user-id', cookie: 'session', query: 'user' } as const;

/** `path` (the default), `ip`, or a kind and a name after a colon: `header:x-user-id`. */
function validateHashKey(walk: Walk, f: Field | undefined): HashKey {
  if (f === undefined) return DEFAULT_HASH_KEY;
  const raw = walk.string(f, HASH_KEY_FORMS);
  if (raw === undefined) return DEFAULT_HASH_KEY;
  const text = raw.trim();
  const colon = text.indexOf(':');
  const kind = colon === -1 ? text : text.slice(0, colon).trim();
  const name = colon === -1 ? undefined : text.slice(colon + 1).trim();
  if (kind === 'path' || kind === 'ip') {
    if (name === undefined) return { kind, name: '' };
    walk.report(f.at, f.path, `${kind} takes no name, got ${JSON.stringify(raw)}: write hash_key: ${kind}`);
    return DEFAULT_HASH_KEY;
  }
  if (kind !== 'header' && kind !== 'cookie' && kind !== 'query') return walk.mismatch(f, HASH_KEY_FORMS, raw) ?? DEFAULT_HASH_KEY;
  if (name === undefined || name === '') {
    walk.report(f.at, f.path, `${kind} needs a name after the colon, like ${kind}:${NAME_EXAMPLES[kind]} (got ${JSON.stringify(raw)})`);
    return DEFAULT_HASH_KEY;
  }
  if (kind === 'query') {
    if (!QUERY_NAME_BREAKERS.test(name)) return { kind, name };
    walk.report(f.at, f.path, `query parameter name must not contain "&", "=", "#" or blanks, got ${JSON.stringify(name)}`);
    return DEFAULT_HASH_KEY;
  }
  if (isToken(name)) return { kind, name: kind === 'header' ? name.toLowerCase() : name };
  const what = kind === 'header' ? 'header name (an HTTP token)' : 'cookie name (an RFC 6265 token)';
  walk.report(f.at, f.path, `${what} may only use ${TOKEN_CHARS}, got ${JSON.stringify(name)}`);
  return DEFAULT_HASH_KEY;
}

const FACTOR_FORMS = '0 (off) or a number from 1 to 100, like 1.25';

/** 0 (off, the default), or a backend may take at most this many times the average in-flight. */
function validateHashBalanceFactor(walk: Walk, f: Field | undefined): number {
  const off = 0;
  if (f === undefined) return off;
  const v = walk.scalar(f, FACTOR_FORMS);
  if (v === undefined) return off;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return walk.mismatch(f, FACTOR_FORMS, v) ?? off;
  if (v === 0) return 0;
  if (v < 1) {
    walk.report(f.at, f.path, `must be 0 (off) or at least 1, got ${v}: below 1 the backends together could not take the average load`);
  } else if (v > MAX_HASH_BALANCE_FACTOR) {
    walk.report(f.at, f.path, `must be at most ${MAX_HASH_BALANCE_FACTOR}, got ${v}: it is a factor, not a percentage (1.25 lets a backend take 125% of the average)`);
  } else return v;
  return off;
}
