// Owns what one worker thread shares between its requests: the logger, the coarse clock that
// drives deadlines, queue waits and idle sweeps (one timer per worker instead of one per request),
// the upstream connection pools (kept by backend URL, so keep-alive connections survive a
// reload), and the current Generation: what one published config means to this worker.

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { algorithmSpec } from '../balancer/registry.js';
import type { Balancer } from '../balancer/types.js';
import type { BackendConfig, Config, HashKey, StickyConfig } from '../config/types.js';
import type { SharedState } from '../shared/layout.js';
import { UpstreamPool, type UpstreamPoolOptions } from '../upstream/pool.js';
import { stickyId } from './affinity.js';
import { BodySlabs } from './body-slabs.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { RetryBudget } from './retry-budget.js';
import { Router } from './router.js';

/** Something with a deadline on the response head. */
export type { Expiring };

/** A request waiting for a free in-flight slot (every backend at max_connections_per_backend). */
export interface Waiter {
  /** Try to pick again; false when still nothing is free (it stays first in the queue). */
  retryPick(): boolean;
  /** False once it was answered or the client left: the queue drops it. */
  readonly waiting: boolean;
}

/**
 * One published config seen from a worker: the shared buffer it was laid out in, routing,
 * balancers, per-backend upstream pools, retry budgets and wait queues. A request keeps the
 * generation it started in until it finishes; new requests take the newest.
 */
export class Generation {
  readonly config: Config;
  readonly state: SharedState;
  readonly router: Router;
  readonly balancers: readonly Balancer[];
  /** Upstream pool per global backend index. */
  readonly upstreams: readonly UpstreamPool[];
  /** Backend URL per global backend index, for logs. */
  readonly backendUrls: readonly string[];
  readonly budgets: readonly RetryBudget[];
  /** Per pool: does a request need reading for a hash key or a sticky cookie? */
  readonly affinity: readonly boolean[];
  /** X-Forwarded-For or an `ip` hash key needs the client's address (a syscall per request). */
  readonly readsClientAddress: boolean;
  readonly hashKeys: readonly (HashKey | null)[];
  readonly sticky: readonly (StickyConfig | null)[];
  /** Per backend of a sticky pool: its opaque id, and the whole Set-Cookie value naming it. */
  readonly stickyIds: readonly string[];
  readonly stickySetCookies: readonly string[];
  private readonly stickyIndex: readonly Map<string, number>[];
  private readonly queues: Waiter[][];
  private queued = 0;

  constructor(config: Config, state: SharedState, seed: number, upstreamFor: (b: BackendConfig) => UpstreamPool) {
    this.config = config;
    this.state = state;
    this.router = new Router(config);
    this.balancers = config.pools.map((p, i) => algorithmSpec(p.algorithm).create(state, i, { pool: p, seed: seed + i }));
    const upstreams: UpstreamPool[] = [];
    const urls: string[] = [];
    for (const pool of config.pools) {
      for (const b of pool.backends) {
        upstreams.push(upstreamFor(b));
        urls.push(b.url);
      }
    }
    this.upstreams = upstreams;
    this.backendUrls = urls;
    this.budgets = config.pools.map((p) => new RetryBudget(p.retryBudget));
    const needs = config.pools.map((p) => algorithmSpec(p.algorithm).needs(p));
    this.hashKeys = config.pools.map((p, i) => (needs[i]!.key ? p.hashKey : null));
    this.sticky = config.pools.map((p) => p.sticky);
    this.affinity = config.pools.map((_, i) => this.hashKeys[i] !== null || this.sticky[i] !== null);
    this.readsClientAddress = config.forwardedFor || needs.some((n) => n.clientAddress);
    const ids: string[] = [];
    const cookies: string[] = [];
    this.stickyIndex = config.pools.map((p, pi) => {
      const index = new Map<string, number>();
      const first = state.poolFirstBackend(pi);
      p.backends.forEach((b, k) => {
        if (p.sticky === null) {
          ids.push('');
          cookies.push('');
          return;
        }
        const id = stickyId(p.name, b.url);
        index.set(id, first + k);
        ids.push(id);
        const maxAge = p.sticky.ttlMs > 0 ? `; Max-Age=${Math.ceil(p.sticky.ttlMs / 1000)}` : '';
        cookies.push(`${p.sticky.cookie}=${id}; Path=/${maxAge}; HttpOnly; SameSite=Lax`);
      });
      return index;
    });
    this.stickyIds = ids;
    this.stickySetCookies = cookies;
    this.queues = config.pools.map(() => []);
  }

  /** The backend a sticky cookie value names in `pool`, or -1. */
  stickyBackend(pool: number, id: string): number {
    return this.stickyIndex[pool]!.get(id) ?? -1;
  }

  get hasWaiters(): boolean {
    return this.queued > 0;
  }

  enqueue(pool: number, w: Waiter): void {
    this.queues[pool]!.push(w);
    this.queued++;
  }

  /** Hand free slots to waiting requests, oldest first; returns true while any still wait. */
  serveQueues(): boolean {
    if (this.queued === 0) return false;
    for (const q of this.queues) {
      while (q.length > 0) {
        const w = q[0]!;
        if (w.waiting && !w.retryPick()) break;
        q.shift();
        this.queued--;
      }
    }
    return this.queued > 0;
  }

  refillBudgets(): void {
    for (const b of this.budgets) b.refill();
  }
}

export class WorkerContext {
  readonly log: Logger;
  readonly workerId: number;
  /** The newest generation: new requests start in it. */
  current: Generation;
  accessLog: boolean;
  /** Where access lines go: batched writes (src/log.ts), unlike `log`. */
  readonly accessLogger: Logger;
  /** Coarse clock (ms), advanced by the tick. */
  now = Date.now();
  /** Set once the primary asked this worker to stop: responses carry Connection: close. */
  draining = false;
  /** Set when the drain's time is over and the requests still in flight are being cut. */
  cutting = false;
  /** Requests accepted and not yet finished, in this worker. */
  inflight = 0;
  /** Reusable memory for request-body chunks on their way to a backend. */
  readonly bodySlabs = new BodySlabs();
  private readonly deadlines = new Deadlines();
  private readonly tickTimer: NodeJS.Timeout;
  private readonly idPrefix: string;
  private seq = 0;
  private lastSweep = Date.now();
  readonly newRequestId: () => string;
  private idleWaiters: (() => void)[] = [];
  /** Upstream pools of the current generation's backends, by URL. */
  private upstreamsByUrl = new Map<string, UpstreamPool>();
  /** Every pool that may still hold a connection (current and retired), for shutdown. */
  private readonly allUpstreams = new Set<UpstreamPool>();
  /** Older generations whose queues still hold waiting requests. */
  private retired: Generation[] = [];
  private queueRun: NodeJS.Immediate | null = null;

  constructor(config: Config, state: SharedState, log: Logger, workerId: number, accessLogger: Logger = log) {
    this.log = log;
    this.accessLogger = accessLogger;
    this.workerId = workerId;
    this.accessLog = config.log.access;
    this.current = this.build(config, state);
    this.idPrefix = randomBytes(5).toString('hex') + '-';
    this.newRequestId = () => this.idPrefix + (++this.seq).toString(36);
    // Deadlines are checked every 50 ms: a 504 comes at most that late.
    this.tickTimer = setInterval(() => this.tick(), 50);
  }

  private build(config: Config, state: SharedState): Generation {
    const opts: UpstreamPoolOptions = { connectTimeoutMs: config.timeouts.connectMs, idleTimeoutMs: config.timeouts.idleMs };
    const next = new Map<string, UpstreamPool>();
    const gen = new Generation(config, state, this.workerId * 7919 + state.generation * 104_729, (b) => {
      let u = next.get(b.url) ?? this.upstreamsByUrl.get(b.url);
      if (u === undefined) {
        u = new UpstreamPool(b.host, b.port, opts);
        this.allUpstreams.add(u);
      } else {
        u.configure(opts);
      }
      next.set(b.url, u);
      return u;
    });
    // backends no longer configured: idle connections close now, busy ones when their request ends
    for (const [url, u] of this.upstreamsByUrl) if (!next.has(url)) u.retire();
    this.upstreamsByUrl = next;
    return gen;
  }

  /** A reload: new requests use `config` and `state`; requests in flight finish in their own. */
  publish(config: Config, state: SharedState): void {
    const old = this.current;
    this.current = this.build(config, state);
    this.accessLog = config.log.access;
    this.log.level = config.log.level;
    this.accessLogger.level = config.log.level;
    if (old.serveQueues()) this.retired.push(old);
  }

  private tick(): void {
    const now = (this.now = Date.now());
    this.deadlines.expire(now);
    // slots freed by other workers are only seen by looking
    this.serveQueues();
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const u of this.allUpstreams) {
        u.sweep(now);
        if (u.retired && u.openCount === 0) this.allUpstreams.delete(u);
      }
      this.current.refillBudgets();
    }
  }

  private serveQueues(): void {
    this.current.serveQueues();
    if (this.retired.length > 0) this.retired = this.retired.filter((g) => g.serveQueues());
  }

  /**
   * A slot was freed in this worker: let waiting requests try, after the current callback (the
   * freeing request may be inside a uWS callback of its own client).
   */
  slotFreed(): void {
    if (this.queueRun !== null || (!this.current.hasWaiters && this.retired.length === 0)) return;
    this.queueRun = setImmediate(() => {
      this.queueRun = null;
      this.serveQueues();
    });
  }

  /** Deadline from the coarse clock: no clock read per request, at most one tick (50 ms) early. */
  watch(e: Expiring, ms: number): void {
    e.deadline = this.now + ms;
    this.deadlines.watch(e);
  }
  /** Watch again with a deadline already set (a request back in its queue keeps its wait). */
  watchUntil(e: Expiring, deadline: number): void {
    e.deadline = deadline;
    this.deadlines.watch(e);
  }
  unwatch(e: Expiring): void {
    this.deadlines.unwatch(e);
  }

  /** A request began in `gen`: counted here (drain) and in its buffer's worker line (metrics). */
  requestStarted(gen: Generation): void {
    this.inflight++;
    gen.state.workerRequestStarted(this.workerId);
  }
  requestFinished(gen: Generation): void {
    gen.state.workerRequestFinished(this.workerId);
    if (--this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
  /** Resolve every `whenIdle` now, requests in flight or not (a stop that cannot wait). */
  endDrain(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when no request is in flight, or after `ms`. */
  whenIdle(ms: number): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Close idle upstream connections (graceful shutdown). */
  closeIdleUpstreams(): void {
    for (const u of this.allUpstreams) u.closeIdle();
  }

  close(): void {
    clearInterval(this.tickTimer);
    if (this.queueRun !== null) clearImmediate(this.queueRun);
    for (const u of this.allUpstreams) u.closeAll();
  }
}
