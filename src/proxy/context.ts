// Owns what one worker thread shares between its requests: the logger, the coarse clock that
// drives deadlines, queue waits and idle sweeps (one timer per worker instead of one per request),
// the upstream connection pools (kept by backend URL, so keep-alive connections survive a
// reload), and the current Generation (generation.ts): what one published config means here.

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { coarseNow, refreshClock, startClock } from '../clock.js';
import type { SecureContext } from 'node:tls';
import { usesTls } from '../config/backend-url.js';
import type { Config, PoolConfig } from '../config/types.js';
import type { SharedState } from '../shared/layout.js';
import { UpstreamPool, type UpstreamPoolOptions } from '../upstream/pool.js';
import { secureContextFor, upstreamTls } from '../upstream/tls.js';
import { BodySlabs } from './body-slabs.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { Generation, type Waiter } from './generation.js';

/** Something with a deadline on the response head. */
export type { Expiring, Generation, Waiter };

/** How often deadlines are checked and queues looked at (ms). */
const TICK_MS = 50;

export class WorkerContext {
  readonly log: Logger;
  readonly workerId: number;
  /** The newest generation: new requests start in it. */
  current: Generation;
  accessLog: boolean;
  /** Where access lines go: batched writes (src/log.ts), unlike `log`. */
  readonly accessLogger: Logger;
  /** The thread's coarse clock (ms, src/clock.ts), advanced by the tick: no clock read per request. */
  get now(): number {
    return coarseNow();
  }
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
  private lastSweep: number;
  readonly newRequestId: () => string;
  private idleWaiters: (() => void)[] = [];
  /** endDrain was called: the drain waits no longer. */
  private drainEnded = false;
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
    startClock(TICK_MS);
    this.lastSweep = coarseNow();
    this.current = this.build(config, state);
    this.idPrefix = randomBytes(5).toString('hex') + '-';
    this.newRequestId = () => this.idPrefix + (++this.seq).toString(36);
    // Deadlines are checked every tick: a 504 comes at most that late.
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
  }

  private build(config: Config, state: SharedState): Generation {
    const plain: UpstreamPoolOptions = { connectTimeoutMs: config.timeouts.connectMs, idleTimeoutMs: config.timeouts.idleMs, tls: null };
    const next = new Map<string, UpstreamPool>();
    // https:// backends: one secure context per pool, made here (files read once per reload)
    const contexts = new Map<PoolConfig, SecureContext>();
    const gen = new Generation(config, state, this.workerId * 7919 + state.generation * 104_729, (b, pool) => {
      let opts = plain;
      if (usesTls(b.url)) {
        let sc = contexts.get(pool);
        if (sc === undefined) contexts.set(pool, (sc = secureContextFor(pool.tls)));
        opts = { ...plain, tls: upstreamTls(sc, pool.tls, b.host) };
      }
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
    if (old.queues.serve()) this.retired.push(old);
  }

  private tick(): void {
    const now = refreshClock();
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
    this.current.queues.serve();
    if (this.retired.length > 0) this.retired = this.retired.filter((g) => g.queues.serve());
  }

  /**
   * A slot was freed in this worker: let waiting requests try, after the current callback (the
   * freeing request may be inside a uWS callback of its own client).
   */
  slotFreed(): void {
    if (this.queueRun !== null || (!this.current.queues.hasWaiters && this.retired.length === 0)) return;
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
    this.drainEnded = true;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when no request is in flight, or after `ms`. */
  whenIdle(ms: number): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : this.idleOrAfter(ms);
  }

  /** Resolves after `ms`, or earlier: when the requests in flight drop to none, or at endDrain. */
  private idleOrAfter(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * The drain's wait: until no request is in flight and none has begun for `quietMs`, or `ms`
   * have passed, or endDrain. A keep-alive connection idle at the stop may still carry one more
   * request (answered with Connection: close); closing every connection the moment nothing is in
   * flight reset the requests already in its socket, unread (seen in a test under load).
   */
  async whenDrained(ms: number, quietMs: number): Promise<void> {
    const deadline = Date.now() + ms;
    await this.whenIdle(ms);
    while (!this.drainEnded) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      // the requests this worker began, as its line in the shared buffer counts them (a reload
      // meanwhile, a new buffer, counts as a request begun)
      const gen = this.current;
      const begun = gen.state.workerRequests(this.workerId);
      // woken early by endDrain, or by a request that began and finished meanwhile
      await this.idleOrAfter(Math.min(quietMs, left));
      if (this.current === gen && gen.state.workerRequests(this.workerId) === begun && this.inflight === 0) return;
      await this.whenIdle(Math.max(0, deadline - Date.now()));
    }
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
