// Owns the SharedArrayBuffer layout: the only module that knows offsets. Every other module reads
// and writes shared state through the named accessors of `SharedState`, or, for the words a
// pool's balancing algorithm owns (a per-backend slot, a per-pool slot and a per-pool table), at
// the word indexes it returns. It names no algorithm: what those words mean is the algorithm's.
//
// Units are 32-bit words; one cache line is 16 words (64 bytes). Read-mostly fields (written by the
// primary) and hot counters (written by every worker on every request) live on different lines,
// and every backend and pool owns whole lines, so one backend's traffic does not invalidate
// another's line (false sharing is the main cost of shared counters at high core counts).
//
//   line 0                       header: magic, layout version, counts, generation
//   per backend (3 lines):       A: state, weight, effective weight, pool
//                                B: shared hot words: in flight, then the algorithm's slot
//                                   (BACKEND_SLOT_WORDS, e.g. a latency average)
//                                C: failure counters (written by workers on failures only)
//   per pool (3 lines):          A: first backend, count, table offset/length
//                                B: the algorithm's slot (POOL_SLOT_WORDS, e.g. a shared cursor)
//                                C: pool event counters
//   table region:                each pool's table: words its algorithm lays out at load time
//                                (e.g. a weighted schedule, a hash ring); read-only afterwards
//   per worker (1 line):         requests accepted, requests in flight (each written by its
//                                worker only)
//   per worker, per backend      S: attempts, answers by status class, WebSocket counters
//   (2 lines, worker-major):     H: response-time histogram (buckets, sum in µs as two words)
//                                Counted on every request, so each worker has its own copy: no
//                                line written per request is shared but in-flight counts (which
//                                limits and load-aware algorithms read across workers) and the
//                                algorithms' slots. Readers add the workers' copies.
//
// A reload lays out a new buffer (with a higher generation); workers switch to it at a request
// boundary and requests already in flight finish on the old one.

export const LINE = 16;
const MAGIC = 0x636c6231; // "clb1"
export const LAYOUT_VERSION = 4;

// header words
const H_MAGIC = 0;
const H_VERSION = 1;
const H_BACKENDS = 2;
const H_POOLS = 3;
const H_TABLE_WORDS = 4;
const H_GENERATION = 5;
const H_WORKERS = 6;
const H_NO_POOL_STATUS = 7; // 5 words: requests answered before a pool was chosen (400, 404, 413), by class

// backend words, line A (read-mostly)
const B_STATE = 0;
const B_WEIGHT = 1;
const B_EFFECTIVE_WEIGHT = 2;
const B_POOL = 3;
// backend words, line B (shared hot words, relative to the backend's base)
const B_INFLIGHT = LINE + 0;
const B_SLOT = LINE + 1;
/** Words of a backend's algorithm slot: the rest of its hot line, zero at layout. */
export const BACKEND_SLOT_WORDS = LINE - 1;
// backend words, line C (failure counters, one per FailureKind, then totals)
const B_FAILURES = 2 * LINE;
const B_PASSIVE_FAILURES = 2 * LINE + 8; // sum of the kinds that passive checks count
const B_RETRIED = 2 * LINE + 9; // requests retried elsewhere after failing on this backend
const BACKEND_WORDS = 3 * LINE;

// per-worker backend counters (each worker's part wraps at 2^32: read as unsigned)
const S_REQUESTS = 0;
const S_STATUS = 1; // 5 words: client requests answered, by status class 1xx..5xx
// proxied WebSockets: opened and closed (open = the difference, summed over generations by
// pool and URL, so one opened before a reload and closed after it is counted right), messages
// to the backend and to the client, and their bytes (two words each: low and high 32 bits)
const S_WS_OPENED = 6;
const S_WS_CLOSED = 7;
const S_WS_MESSAGES = 8; // 2 words: to the backend, to the client
const S_WS_BYTES = 10; // 4 words: to the backend (lo, hi), to the client (lo, hi)
const S_HISTOGRAM = LINE; // LATENCY_BUCKETS_US.length + 1 words (the last is +Inf)
const S_LATENCY_SUM_LO = LINE + 14; // sum of observations in µs, low and high 32 bits
const S_LATENCY_SUM_HI = LINE + 15;
const STATS_WORDS = 2 * LINE;

/** Upper bounds (µs) of the response-time histogram buckets; one more bucket counts the rest. */
export const LATENCY_BUCKETS_US: readonly number[] = [1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000];
const LATENCY_BUCKETS = LATENCY_BUCKETS_US.length + 1;

// worker words
const W_REQUESTS = 0;
const W_INFLIGHT = 1;
const WORKER_WORDS = LINE;

// pool words
const P_FIRST_BACKEND = 0;
const P_BACKEND_COUNT = 1;
const P_TABLE_OFFSET = 2;
const P_TABLE_LENGTH = 3;
const P_SLOT = LINE;
/** Words of a pool's algorithm slot: a line of its own, zero at layout. */
export const POOL_SLOT_WORDS = LINE;
const P_EVENTS = 2 * LINE; // one counter per PoolEvent
const P_STATUS = 2 * LINE + 8; // 5 words: requests answered without a backend, by status class
const POOL_WORDS = 3 * LINE;

/**
 * Effective weights are stored in thousandths of a weight unit, so slow start can ramp a
 * weight-1 backend smoothly: effective = weight * WEIGHT_SCALE * ramp.
 */
export const WEIGHT_SCALE = 1000;

/** Failure classes counted per backend. All of them count for passive health checks. */
export const enum FailureKind {
  Connect = 0,
  ConnectTimeout = 1,
  Reset = 2,
  ResponseTimeout = 3,
  InvalidResponse = 4,
  Status5xx = 5,
}
export const FAILURE_KINDS = 6;

/** Per-pool events worth a counter. */
export const enum PoolEvent {
  /** 503: no backend was available at all. */
  NoBackend = 0,
  /** The request waited because every backend was at max_connections_per_backend. */
  Queued = 1,
  /** 503: it waited timeouts.queue and still found every backend full. */
  QueueTimeout = 2,
  /** A retry was allowed by `retries` but refused by the retry budget. */
  RetryBudgetExhausted = 3,
}
export const POOL_EVENTS = 4;

export const enum BackendState {
  Up = 0,
  Down = 1,
  Draining = 2,
  SlowStart = 3,
}

/**
 * What the primary lays out: per pool, its backends' weights in order, and the table its
 * algorithm built (words in the algorithm's own format; none when it needs none).
 */
export interface PoolLayout {
  readonly weights: readonly number[];
  /** 32-bit words, stored as Int32 (an unsigned value reads back from `uwords`). */
  readonly table?: ArrayLike<number>;
}
export interface LayoutSpec {
  readonly pools: readonly PoolLayout[];
  /** Worker threads that count into their own line (default 1). */
  readonly workers?: number;
}

/** Add `n` to a word only this thread writes (see SharedState): wraps as Atomics.add does. */
function bump(words: Int32Array, at: number, n: number): void {
  words[at] = (words[at]! + n) | 0;
}

/** Add `n` (an integer under 2^53) to the 64-bit count in words [at, at + 1] (low, high) that only this thread writes. */
function bumpWide(u: Uint32Array, at: number, n: number): void {
  const lo = n % 0x1_0000_0000;
  const before = u[at]!;
  u[at] = before + lo; // a Uint32Array stores it modulo 2^32
  const up = (n - lo) / 0x1_0000_0000 + (before + lo > 0xffffffff ? 1 : 0);
  if (up > 0) u[at + 1] = u[at + 1]! + up;
}

/** 0 for 1xx ... 4 for 5xx; -1 outside 100-599. */
export function statusClass(status: number): number {
  const c = ((status / 100) | 0) - 1;
  return c >= 0 && c <= 4 ? c : -1;
}

/**
 * Reads: words that one side writes and others only read (state, weights, in-flight counts for a
 * comparison) are read plainly: an aligned 32-bit read never tears, a pick needs no ordering
 * beyond "a recent value", and Atomics.load is a call costing ~17 ns on Node 20 where a plain
 * read is 2-7 ns. Read-modify-writes of words that several threads write (in-flight slots,
 * cursors, backend and pool counters) are Atomics. A worker's own lines (its worker line and its
 * copy of the backend counters) have one writer, its thread: those are plain read-modify-writes
 * (an Atomics.add is a call of about 11 ns against under 1 for `w[i] = (w[i] + 1) | 0`, and a
 * request makes seven of them), read by others as any plain-written word.
 */
export class SharedState {
  readonly buffer: SharedArrayBuffer;
  readonly words: Int32Array;
  readonly uwords: Uint32Array;
  readonly backendCount: number;
  readonly poolCount: number;
  private readonly backendsBase: number;
  private readonly poolsBase: number;
  private readonly tableBase: number;
  private readonly workersBase: number;
  readonly workerCount: number;
  private readonly statsBase: number;
  /** Start of the per-backend counters this view writes (its worker's copy). */
  private readonly ownStats: number;

  private constructor(buffer: SharedArrayBuffer, worker: number) {
    this.buffer = buffer;
    this.words = new Int32Array(buffer);
    this.uwords = new Uint32Array(buffer);
    if (this.words[H_MAGIC] !== MAGIC || this.words[H_VERSION] !== LAYOUT_VERSION) {
      throw new Error('shared buffer has an unknown layout');
    }
    this.backendCount = this.words[H_BACKENDS]!;
    this.poolCount = this.words[H_POOLS]!;
    this.backendsBase = LINE;
    this.poolsBase = this.backendsBase + this.backendCount * BACKEND_WORDS;
    this.tableBase = this.poolsBase + this.poolCount * POOL_WORDS;
    // worker lines start on a line boundary, so no worker shares its line with other data
    this.workersBase = Math.ceil((this.tableBase + this.words[H_TABLE_WORDS]!) / LINE) * LINE;
    this.workerCount = this.words[H_WORKERS]!;
    this.statsBase = this.workersBase + this.workerCount * WORKER_WORDS;
    this.ownStats = this.statsBase + (worker % this.workerCount) * this.backendCount * STATS_WORDS;
  }

  /** Primary: allocate and fill a buffer for `spec`. Backends are numbered pool by pool. */
  static create(spec: LayoutSpec, generation = 1): SharedState {
    let backends = 0;
    let tableWords = 0;
    for (const p of spec.pools) {
      backends += p.weights.length;
      tableWords += p.table?.length ?? 0;
    }
    const pools = spec.pools.length;
    const workers = Math.max(1, spec.workers ?? 1);
    let words = LINE + backends * BACKEND_WORDS + pools * POOL_WORDS + tableWords;
    words = Math.ceil(words / LINE) * LINE + workers * WORKER_WORDS + workers * backends * STATS_WORDS;
    const buffer = new SharedArrayBuffer(words * 4);
    const w = new Int32Array(buffer);
    w[H_MAGIC] = MAGIC;
    w[H_VERSION] = LAYOUT_VERSION;
    w[H_BACKENDS] = backends;
    w[H_POOLS] = pools;
    w[H_GENERATION] = generation;
    w[H_TABLE_WORDS] = tableWords;
    w[H_WORKERS] = workers;
    const state = new SharedState(buffer, 0);
    let first = 0;
    let tableOffset = 0;
    spec.pools.forEach((p, pi) => {
      const pb = state.poolsBase + pi * POOL_WORDS;
      const table = p.table ?? [];
      w[pb + P_FIRST_BACKEND] = first;
      w[pb + P_BACKEND_COUNT] = p.weights.length;
      w[pb + P_TABLE_OFFSET] = tableOffset;
      w[pb + P_TABLE_LENGTH] = table.length;
      w.set(table, state.tableBase + tableOffset);
      tableOffset += table.length;
      p.weights.forEach((weight, bi) => {
        const bb = state.backendsBase + (first + bi) * BACKEND_WORDS;
        w[bb + B_STATE] = BackendState.Up;
        w[bb + B_WEIGHT] = weight;
        w[bb + B_EFFECTIVE_WEIGHT] = weight * WEIGHT_SCALE;
        w[bb + B_POOL] = pi;
      });
      first += p.weights.length;
    });
    return state;
  }

  /** A view over a buffer the primary created; counters it writes go to `worker`'s copy. */
  static attach(buffer: SharedArrayBuffer, worker = 0): SharedState {
    return new SharedState(buffer, worker);
  }

  /** Bumped by every reload: the buffer a worker holds is current while this matches. */
  get generation(): number {
    return this.words[H_GENERATION]!;
  }

  // ---- backends (index is global across pools)
  private b(i: number): number {
    return this.backendsBase + i * BACKEND_WORDS;
  }
  state(i: number): BackendState {
    return this.words[this.b(i) + B_STATE]!;
  }
  setState(i: number, s: BackendState): void {
    Atomics.store(this.words, this.b(i) + B_STATE, s);
  }
  /** Picked for new requests: up, or ramping up after a return. */
  available(i: number): boolean {
    const s = this.words[this.b(i) + B_STATE]!;
    return s === BackendState.Up || s === BackendState.SlowStart;
  }
  weight(i: number): number {
    return this.words[this.b(i) + B_WEIGHT]!;
  }
  /** Configured weight, set by the primary (admin weight changes). */
  setWeight(i: number, weight: number): void {
    Atomics.store(this.words, this.b(i) + B_WEIGHT, weight);
  }
  /** The weight balancers use now, in WEIGHT_SCALE units: lower while slow start ramps up. */
  effectiveWeight(i: number): number {
    return this.words[this.b(i) + B_EFFECTIVE_WEIGHT]!;
  }
  setEffectiveWeight(i: number, scaled: number): void {
    Atomics.store(this.words, this.b(i) + B_EFFECTIVE_WEIGHT, scaled);
  }
  /** Global index of a pool's backend `k` is poolFirstBackend + k; this maps back. */
  poolOf(i: number): number {
    return this.words[this.b(i) + B_POOL]!;
  }
  inflight(i: number): number {
    return this.words[this.b(i) + B_INFLIGHT]!;
  }
  /**
   * Take one in-flight slot, unless `limit` (> 0) are already taken across all workers.
   * Returns false when full. Pair every true with one `releaseInflight`.
   */
  tryAcquireInflight(i: number, limit: number): boolean {
    const at = this.b(i) + B_INFLIGHT;
    if (limit <= 0) {
      Atomics.add(this.words, at, 1);
      return true;
    }
    const before = Atomics.add(this.words, at, 1);
    if (before < limit) return true;
    Atomics.sub(this.words, at, 1);
    return false;
  }
  releaseInflight(i: number): void {
    Atomics.sub(this.words, this.b(i) + B_INFLIGHT, 1);
  }
  // ---- per-backend counters: written to this view's worker copy, read as the workers' sum
  private own(i: number): number {
    return this.ownStats + i * STATS_WORDS;
  }
  /** Sum over the workers' copies of unsigned word `word` of backend `i`'s counters. */
  private sumStats(i: number, word: number): number {
    let sum = 0;
    for (let w = 0, at = this.statsBase + i * STATS_WORDS + word; w < this.workerCount; w++, at += this.backendCount * STATS_WORDS) {
      sum += Atomics.load(this.uwords, at);
    }
    return sum;
  }
  countRequest(i: number): void {
    bump(this.words, this.own(i) + S_REQUESTS, 1);
  }
  requests(i: number): number {
    return this.sumStats(i, S_REQUESTS);
  }
  websocketOpened(i: number): void {
    bump(this.words, this.own(i) + S_WS_OPENED, 1);
  }
  websocketClosed(i: number): void {
    bump(this.words, this.own(i) + S_WS_CLOSED, 1);
  }
  /** `messages` WebSocket messages of `bytes` in all relayed to (or from) backend `i`; `toClient`: from it. */
  countWebSocketMessages(i: number, toClient: boolean, messages: number, bytes: number): void {
    const s = this.own(i);
    const d = toClient ? 1 : 0;
    bump(this.words, s + S_WS_MESSAGES + d, messages);
    bumpWide(this.uwords, s + S_WS_BYTES + 2 * d, bytes);
  }
  websocketsOpened(i: number): number {
    return this.sumStats(i, S_WS_OPENED);
  }
  websocketsClosed(i: number): number {
    return this.sumStats(i, S_WS_CLOSED);
  }
  websocketMessages(i: number, toClient: boolean): number {
    return this.sumStats(i, S_WS_MESSAGES + (toClient ? 1 : 0));
  }
  websocketBytes(i: number, toClient: boolean): number {
    const w = S_WS_BYTES + (toClient ? 2 : 0);
    return this.sumStats(i, w + 1) * 2 ** 32 + this.sumStats(i, w);
  }
  /**
   * Word index (in `words` / `uwords`) of backend `i`'s algorithm slot: BACKEND_SLOT_WORDS words
   * on its hot line, whose meaning the pool's algorithm defines (all workers share them).
   */
  backendSlot(i: number): number {
    return this.b(i) + B_SLOT;
  }
  /** A client request finished with `status`, answered by (or last tried on) backend `i`. */
  countStatus(i: number, status: number): void {
    const c = statusClass(status);
    if (c >= 0) bump(this.words, this.own(i) + S_STATUS + c, 1);
  }
  /** Client requests backend `i` answered with status class `c` (0 = 1xx ... 4 = 5xx). */
  statusCount(i: number, c: number): number {
    return this.sumStats(i, S_STATUS + c);
  }
  /** A client request of `pool` answered without any backend (503 none, 400, 413, ...). */
  countPoolStatus(pool: number, status: number): void {
    const c = statusClass(status);
    if (c >= 0) Atomics.add(this.words, this.p(pool) + P_STATUS + c, 1);
  }
  poolStatusCount(pool: number, c: number): number {
    return Atomics.load(this.uwords, this.p(pool) + P_STATUS + c);
  }
  /** A request answered before a pool was chosen: malformed, too large, or matching no route. */
  countNoPoolStatus(status: number): void {
    const c = statusClass(status);
    if (c >= 0) Atomics.add(this.words, H_NO_POOL_STATUS + c, 1);
  }
  noPoolStatusCount(c: number): number {
    return Atomics.load(this.uwords, H_NO_POOL_STATUS + c);
  }

  /** Backend `i` sent response headers `micros` after it was picked. */
  recordLatency(i: number, micros: number): void {
    const s = this.own(i);
    let k = 0;
    while (k < LATENCY_BUCKETS - 1 && micros > LATENCY_BUCKETS_US[k]!) k++;
    bump(this.words, s + S_HISTOGRAM + k, 1);
    bumpWide(this.uwords, s + S_LATENCY_SUM_LO, micros >>> 0);
  }
  /** Observations in bucket `k` (not cumulative; k = LATENCY_BUCKETS_US.length is +Inf). */
  latencyBucket(i: number, k: number): number {
    return this.sumStats(i, S_HISTOGRAM + k);
  }
  /** Sum of all observations, µs. */
  latencySumMicros(i: number): number {
    return this.sumStats(i, S_LATENCY_SUM_HI) * 2 ** 32 + this.sumStats(i, S_LATENCY_SUM_LO);
  }

  // ---- workers (each writes only its own line)
  private wk(worker: number): number {
    return this.workersBase + (worker % this.workerCount) * WORKER_WORDS;
  }
  workerRequestStarted(worker: number): void {
    const w = this.wk(worker);
    bump(this.words, w + W_REQUESTS, 1);
    bump(this.words, w + W_INFLIGHT, 1);
  }
  workerRequestFinished(worker: number): void {
    bump(this.words, this.wk(worker) + W_INFLIGHT, -1);
  }
  workerRequests(worker: number): number {
    return Atomics.load(this.uwords, this.wk(worker) + W_REQUESTS);
  }
  workerInflight(worker: number): number {
    return Atomics.load(this.words, this.wk(worker) + W_INFLIGHT);
  }

  /** Count a failed attempt on backend `i`; every kind also counts for passive checks. */
  countFailure(i: number, kind: FailureKind): void {
    const b = this.b(i);
    Atomics.add(this.words, b + B_FAILURES + kind, 1);
    Atomics.add(this.words, b + B_PASSIVE_FAILURES, 1);
  }
  failures(i: number, kind: FailureKind): number {
    return Atomics.load(this.uwords, this.b(i) + B_FAILURES + kind);
  }
  /** Total of all failure kinds; unsigned, wraps at 2^32 (readers take differences). */
  passiveFailures(i: number): number {
    return Atomics.load(this.uwords, this.b(i) + B_PASSIVE_FAILURES);
  }
  countRetried(i: number): void {
    Atomics.add(this.words, this.b(i) + B_RETRIED, 1);
  }
  retried(i: number): number {
    return Atomics.load(this.uwords, this.b(i) + B_RETRIED);
  }

  // ---- pools
  private p(pool: number): number {
    return this.poolsBase + pool * POOL_WORDS;
  }
  poolFirstBackend(pool: number): number {
    return this.words[this.p(pool) + P_FIRST_BACKEND]!;
  }
  poolBackendCount(pool: number): number {
    return this.words[this.p(pool) + P_BACKEND_COUNT]!;
  }
  /** Word index (in `words` / `uwords`) of the pool's algorithm slot: POOL_SLOT_WORDS words on a line of their own. */
  poolSlot(pool: number): number {
    return this.p(pool) + P_SLOT;
  }
  /** Word index (in `words` / `uwords`) of the pool's table, as its algorithm laid it out. */
  poolTable(pool: number): number {
    return this.tableBase + this.words[this.p(pool) + P_TABLE_OFFSET]!;
  }
  /** Words in the pool's table (0 when its algorithm lays out none). */
  poolTableLength(pool: number): number {
    return this.words[this.p(pool) + P_TABLE_LENGTH]!;
  }
  countPoolEvent(pool: number, event: PoolEvent): void {
    Atomics.add(this.words, this.p(pool) + P_EVENTS + event, 1);
  }
  poolEvents(pool: number, event: PoolEvent): number {
    return Atomics.load(this.uwords, this.p(pool) + P_EVENTS + event);
  }
  /** True when at least one backend of the pool may be picked (ignoring in-flight limits). */
  poolHasAvailable(pool: number): boolean {
    const first = this.poolFirstBackend(pool);
    const end = first + this.poolBackendCount(pool);
    for (let i = first; i < end; i++) if (this.available(i)) return true;
    return false;
  }
}
