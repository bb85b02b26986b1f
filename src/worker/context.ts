// Owns what one worker thread shares between its requests: the config, the shared-state view,
// router, balancers, upstream pools, the logger, and the coarse clock that drives deadlines and
// idle sweeps (one timer per worker instead of one per request).

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { balancers } from '../balancer/registry.js';
import type { Balancer } from '../balancer/types.js';
import type { Config } from '../config/types.js';
import type { SharedState } from '../shared/layout.js';
import { UpstreamPool } from '../upstream/pool.js';
import { Router } from './router.js';

/** Something with a deadline on the response head. */
export interface Expiring {
  deadline: number;
  onDeadline(): void;
}

export class WorkerContext {
  readonly config: Config;
  readonly state: SharedState;
  readonly router: Router;
  readonly balancers: readonly Balancer[];
  readonly upstreams: readonly UpstreamPool[];
  /** Backend URL per global backend index, for logs. */
  readonly backendUrls: readonly string[];
  readonly log: Logger;
  readonly accessLog: boolean;
  readonly workerId: number;
  /** Coarse clock (ms), advanced by the tick. */
  now = Date.now();
  /** Set once the primary asked this worker to stop: responses carry Connection: close. */
  draining = false;
  /** Requests accepted and not yet finished, in this worker. */
  inflight = 0;
  private readonly waiting = new Set<Expiring>();
  private readonly tickTimer: NodeJS.Timeout;
  private readonly idPrefix: string;
  private seq = 0;
  private lastSweep = Date.now();
  readonly newRequestId: () => string;
  private idleWaiters: (() => void)[] = [];

  constructor(config: Config, state: SharedState, log: Logger, workerId: number) {
    this.config = config;
    this.state = state;
    this.log = log;
    this.workerId = workerId;
    this.accessLog = config.log.access;
    this.router = new Router(config);
    this.balancers = config.pools.map((p, i) => balancers[p.algorithm](state, i));
    const opts = { connectTimeoutMs: config.timeouts.connectMs, idleTimeoutMs: config.timeouts.idleMs };
    const upstreams: UpstreamPool[] = [];
    const urls: string[] = [];
    for (const pool of config.pools) {
      for (const b of pool.backends) {
        upstreams.push(new UpstreamPool(b.host, b.port, opts));
        urls.push(b.url);
      }
    }
    this.upstreams = upstreams;
    this.backendUrls = urls;
    this.idPrefix = randomBytes(5).toString('hex') + '-';
    this.newRequestId = () => this.idPrefix + (++this.seq).toString(36);
    // Deadlines are checked every 50 ms: a 504 comes at most that late.
    this.tickTimer = setInterval(() => this.tick(), 50);
  }

  private tick(): void {
    const now = (this.now = Date.now());
    for (const e of this.waiting) {
      if (e.deadline <= now) {
        this.waiting.delete(e);
        e.onDeadline();
      }
    }
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const u of this.upstreams) u.sweep(now);
    }
  }

  /** Deadline from the coarse clock: no clock read per request, at most one tick (50 ms) early. */
  watch(e: Expiring, ms: number): void {
    e.deadline = this.now + ms;
    this.waiting.add(e);
  }
  unwatch(e: Expiring): void {
    this.waiting.delete(e);
  }

  requestStarted(): void {
    this.inflight++;
  }
  requestFinished(): void {
    if (--this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
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

  close(): void {
    clearInterval(this.tickTimer);
    for (const u of this.upstreams) u.closeAll();
  }
}
