// Owns what the admin server reports about the data plane over time: the live generation (config
// and shared buffer) plus the replaced ones, and one read of all of them as a Snapshot. A reload
// lays out a new buffer while requests in flight finish (and count) in the old one, so a replaced
// generation is still read for a while (timeouts.drain + 5 s), then its counters are folded into
// running totals keyed by pool + backend URL, pool and worker id: counters never go down. Gauges
// (in flight, state, weights) come from the live buffer only. Also keeps the last reload's outcome.

import { listenerAddress } from '../config/listeners.js';
import type { Algorithm, Config } from '../config/types.js';
import { BackendState, FAILURE_KINDS, LATENCY_BUCKETS_US, POOL_EVENTS, WEIGHT_SCALE, type SharedState } from '../shared/layout.js';

/** Extra time a replaced generation is read after timeouts.drain, before it is folded. */
export const FOLD_AFTER_DRAIN_MS = 5_000;
const STATUS_CLASSES = 5;
const BUCKETS = LATENCY_BUCKETS_US.length + 1;

/** Counters of one backend of one pool (by URL), summed over generations. */
export interface BackendCounters {
  /** Attempts sent to it (a retried request counts once per backend tried). */
  attempts: number;
  /** Client requests it answered (or failed last), by status class: [1xx, 2xx, 3xx, 4xx, 5xx]. */
  status: number[];
  /** Failed attempts by FailureKind. */
  failures: number[];
  /** Requests retried elsewhere after failing on it. */
  retried: number;
  /** Proxied WebSockets opened and closed (open: the difference). */
  wsOpened: number;
  wsClosed: number;
  /** WebSocket messages and bytes: [to the backend, to the client]. */
  wsMessages: number[];
  wsBytes: number[];
  /** Response-time histogram, non-cumulative; the last bucket is +Inf. */
  buckets: number[];
  sumMicros: number;
}

export interface PoolCounters {
  /** By PoolEvent. */
  events: number[];
  /** Client requests answered without a backend, by status class. */
  status: number[];
}

export interface BackendSnapshot extends BackendCounters {
  readonly url: string;
  readonly state: BackendState;
  readonly weight: number;
  /** As a weight (scaled / WEIGHT_SCALE): lower than `weight` while slow start ramps. */
  readonly effectiveWeight: number;
  readonly inflight: number;
}

export interface PoolSnapshot extends PoolCounters {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly backends: readonly BackendSnapshot[];
}

export interface WorkerSnapshot {
  readonly id: number;
  readonly requests: number;
  readonly inflight: number;
}

export interface ReloadOutcome {
  readonly ok: boolean;
  /** Epoch ms. */
  readonly at: number;
  readonly problems: readonly string[];
}

export interface Snapshot {
  /** Epoch ms of the read. */
  readonly time: number;
  readonly startedAt: number;
  readonly generation: number;
  readonly pools: readonly PoolSnapshot[];
  /** Backends and pools no longer configured: their counters stay (and never go down). */
  readonly removedBackends: readonly (BackendCounters & { readonly pool: string; readonly url: string })[];
  readonly removedPools: readonly (PoolCounters & { readonly name: string })[];
  /** Requests answered before a pool was chosen (400, 404, 413), by status class. */
  readonly noPool: readonly number[];
  readonly workers: readonly WorkerSnapshot[];
  /** null until the first reload. */
  readonly lastReload: ReloadOutcome | null;
  /** The TLS listeners' certificates in effect, one entry per DNS name they serve. */
  readonly certificates: readonly CertificateExpiry[];
}

export interface CertificateExpiry {
  /** `host:port` of the listener. */
  readonly listener: string;
  /** A DNS name the certificate serves ('' for a default certificate that names none). */
  readonly name: string;
  readonly file: string;
  /** The certificate's notAfter, epoch ms. */
  readonly notAfterMs: number;
}

function certificatesOf(config: Config): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  for (const l of config.listen) {
    if (l.tls === null) continue;
    const listener = listenerAddress(l);
    for (const c of l.tls.certificates) {
      for (const name of c.names.length === 0 ? [''] : c.names) out.push({ listener, name, file: c.certFile, notAfterMs: c.notAfterMs });
    }
  }
  return out;
}

interface Generation {
  readonly config: Config;
  readonly state: SharedState;
  /** Epoch ms when it was replaced (null: live). */
  readonly replacedAt: number;
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

function emptyBackend(): BackendCounters {
  return { attempts: 0, status: zeros(STATUS_CLASSES), failures: zeros(FAILURE_KINDS), retried: 0, buckets: zeros(BUCKETS), sumMicros: 0, wsOpened: 0, wsClosed: 0, wsMessages: zeros(2), wsBytes: zeros(2) };
}

function emptyPool(): PoolCounters {
  return { events: zeros(POOL_EVENTS), status: zeros(STATUS_CLASSES) };
}

function backendKey(pool: string, url: string): string {
  return `${pool} ${url}`;
}

/** Running sums by pool + backend URL, pool and worker id. */
class Totals {
  readonly backends = new Map<string, BackendCounters & { pool: string; url: string }>();
  readonly pools = new Map<string, PoolCounters>();
  readonly workers = new Map<number, number>();
  readonly noPool = zeros(STATUS_CLASSES);

  backend(pool: string, url: string): BackendCounters {
    const key = backendKey(pool, url);
    let b = this.backends.get(key);
    if (b === undefined) {
      b = { ...emptyBackend(), pool, url };
      this.backends.set(key, b);
    }
    return b;
  }

  pool(name: string): PoolCounters {
    let p = this.pools.get(name);
    if (p === undefined) {
      p = emptyPool();
      this.pools.set(name, p);
    }
    return p;
  }

  /** Adds every counter of generation `g` (its buffer as it is now). */
  add(g: { config: Config; state: SharedState }): void {
    const { config, state } = g;
    config.pools.forEach((pool, pi) => {
      const first = state.poolFirstBackend(pi);
      pool.backends.forEach((b, k) => addBackend(this.backend(pool.name, b.url), state, first + k));
      addPool(this.pool(pool.name), state, pi);
    });
    for (let w = 0; w < state.workerCount; w++) this.workers.set(w, (this.workers.get(w) ?? 0) + state.workerRequests(w));
    for (let c = 0; c < STATUS_CLASSES; c++) this.noPool[c]! += state.noPoolStatusCount(c);
  }
}

function addBackend(to: BackendCounters, state: SharedState, i: number): void {
  to.attempts += state.requests(i);
  for (let c = 0; c < STATUS_CLASSES; c++) to.status[c]! += state.statusCount(i, c);
  for (let k = 0; k < FAILURE_KINDS; k++) to.failures[k]! += state.failures(i, k);
  to.retried += state.retried(i);
  for (let k = 0; k < BUCKETS; k++) to.buckets[k]! += state.latencyBucket(i, k);
  to.sumMicros += state.latencySumMicros(i);
  to.wsOpened += state.websocketsOpened(i);
  to.wsClosed += state.websocketsClosed(i);
  for (let d = 0; d < 2; d++) {
    to.wsMessages[d]! += state.websocketMessages(i, d === 1);
    to.wsBytes[d]! += state.websocketBytes(i, d === 1);
  }
}

function addPool(to: PoolCounters, state: SharedState, pool: number): void {
  for (let e = 0; e < POOL_EVENTS; e++) to.events[e]! += state.poolEvents(pool, e);
  for (let c = 0; c < STATUS_CLASSES; c++) to.status[c]! += state.poolStatusCount(pool, c);
}

function cloneBackend(b: BackendCounters): BackendCounters {
  return {
    attempts: b.attempts,
    status: [...b.status],
    failures: [...b.failures],
    retried: b.retried,
    buckets: [...b.buckets],
    sumMicros: b.sumMicros,
    wsOpened: b.wsOpened,
    wsClosed: b.wsClosed,
    wsMessages: [...b.wsMessages],
    wsBytes: [...b.wsBytes],
  };
}

export class Counters {
  readonly startedAt: number;
  private live: Generation;
  private replaced: Generation[] = [];
  private readonly folded = new Totals();
  private reload: ReloadOutcome | null = null;

  constructor(config: Config, state: SharedState, now = Date.now()) {
    this.startedAt = now;
    this.live = { config, state, replacedAt: 0 };
  }

  get config(): Config {
    return this.live.config;
  }

  get state(): SharedState {
    return this.live.state;
  }

  /** A new generation is live; the one it replaces is still read until it is folded. */
  publish(config: Config, state: SharedState, now = Date.now()): void {
    this.replaced.push({ ...this.live, replacedAt: now });
    this.live = { config, state, replacedAt: 0 };
  }

  noteReload(ok: boolean, problems: readonly string[] = [], now = Date.now()): void {
    this.reload = { ok, at: now, problems };
  }

  /** Fold the replaced generations whose requests have had time to finish. */
  private fold(now: number): void {
    const holdMs = this.live.config.timeouts.drainMs + FOLD_AFTER_DRAIN_MS;
    const keep: Generation[] = [];
    for (const g of this.replaced) {
      if (now - g.replacedAt >= holdMs) this.folded.add(g);
      else keep.push(g);
    }
    this.replaced = keep;
  }

  /** Everything, as of now: folded totals + replaced generations + the live buffer. */
  snapshot(now = Date.now()): Snapshot {
    this.fold(now);
    const sum = new Totals();
    for (const [key, b] of this.folded.backends) sum.backends.set(key, { ...cloneBackend(b), pool: b.pool, url: b.url });
    for (const [name, p] of this.folded.pools) sum.pools.set(name, { events: [...p.events], status: [...p.status] });
    for (const [w, n] of this.folded.workers) sum.workers.set(w, n);
    for (let c = 0; c < STATUS_CLASSES; c++) sum.noPool[c] = this.folded.noPool[c]!;
    for (const g of this.replaced) sum.add(g);
    sum.add(this.live);

    const { config, state } = this.live;
    const seenBackends = new Set<string>();
    const pools: PoolSnapshot[] = config.pools.map((pool, pi) => {
      const first = state.poolFirstBackend(pi);
      const backends = pool.backends.map((b, k): BackendSnapshot => {
        const i = first + k;
        seenBackends.add(backendKey(pool.name, b.url));
        return {
          ...sum.backend(pool.name, b.url),
          url: b.url,
          state: state.state(i),
          weight: state.weight(i),
          effectiveWeight: state.effectiveWeight(i) / WEIGHT_SCALE,
          inflight: state.inflight(i),
        };
      });
      return { name: pool.name, algorithm: pool.algorithm, ...sum.pool(pool.name), backends };
    });
    const poolNames = new Set(config.pools.map((p) => p.name));
    const workers: WorkerSnapshot[] = [];
    for (let w = 0; w < state.workerCount; w++) workers.push({ id: w, requests: sum.workers.get(w) ?? 0, inflight: state.workerInflight(w) });
    return {
      time: now,
      startedAt: this.startedAt,
      generation: state.generation,
      pools,
      removedBackends: [...sum.backends.entries()].filter(([key]) => !seenBackends.has(key)).map(([, b]) => b),
      removedPools: [...sum.pools.entries()].filter(([name]) => !poolNames.has(name)).map(([name, p]) => ({ name, ...p })),
      noPool: sum.noPool,
      workers,
      lastReload: this.reload,
      certificates: certificatesOf(config),
    };
  }
}
