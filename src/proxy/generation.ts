// Owns one published config as a worker sees it (a Generation): the shared buffer it was laid out
// in, routing, one balancer per pool, the upstream pool of each backend, retry budgets, affinity
// (hash keys, sticky ids) and the wait queues. A request keeps the generation it started in until
// it finishes; new requests take the newest.

import { algorithmSpec } from '../balancer/registry.js';
import type { Balancer } from '../balancer/types.js';
import type { BackendConfig, Config, HashKey, PoolConfig, StickyConfig } from '../config/types.js';
import type { SharedState } from '../shared/layout.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { WaitQueues, type Waiter } from './admission.js';
import { stickyId } from './affinity.js';
import { RetryBudget } from './retry-budget.js';
import { Router } from './router.js';

export type { Waiter };

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
  /** Requests waiting for a free in-flight slot, per pool (admission.ts). */
  readonly queues: WaitQueues;

  constructor(config: Config, state: SharedState, seed: number, upstreamFor: (b: BackendConfig, pool: PoolConfig) => UpstreamPool) {
    this.config = config;
    this.state = state;
    this.router = new Router(config);
    this.balancers = config.pools.map((p, i) => algorithmSpec(p.algorithm).create(state, i, { pool: p, seed: seed + i }));
    const upstreams: UpstreamPool[] = [];
    const urls: string[] = [];
    for (const pool of config.pools) {
      for (const b of pool.backends) {
        upstreams.push(upstreamFor(b, pool));
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
    this.queues = new WaitQueues(config.pools.length);
  }

  /** The backend a sticky cookie value names in `pool`, or -1. */
  stickyBackend(pool: number, id: string): number {
    return this.stickyIndex[pool]!.get(id) ?? -1;
  }

  refillBudgets(): void {
    for (const b of this.budgets) b.refill();
  }
}

