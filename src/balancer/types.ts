// Owns the balancer interface: every algorithm picks a backend of one pool from shared state,
// lock-free, without allocating.

import type { PoolConfig } from '../config/types.js';
import type { SharedState } from '../shared/layout.js';

/** Global backend index; -1 means "none available". */
export type BackendIndex = number;
export const NONE: BackendIndex = -1;

/** Per-request input to a pick. Reused by the caller: a balancer must not keep it. */
export interface PickContext {
  /** A backend to avoid (the one a retry just failed on), or -1. Used only if another is available. */
  avoid: BackendIndex;
  /** Per-pool in-flight limit across all workers; 0 = unlimited. A full backend is not picked. */
  maxInflight: number;
  /** 32-bit hash of the request's key (consistent-hash pools), or -1 when the request has none. */
  hash: number;
}

export interface Balancer {
  /**
   * Returns an available backend of the pool and holds one in-flight slot on it (release it with
   * `state.releaseInflight` when the request ends), or NONE when every backend is down or full.
   */
  pick(ctx: PickContext): BackendIndex;
  /** A response head arrived from `backend` `ms` after it was picked (latency-aware algorithms learn). */
  observe(backend: BackendIndex, ms: number): void;
}

/** What an algorithm may read besides the shared state: its pool's config and a per-worker seed. */
export interface BalancerOptions {
  readonly pool: PoolConfig;
  /** Differs per worker, so randomised algorithms do not move in lock-step across workers. */
  readonly seed: number;
}

export type BalancerFactory = (state: SharedState, pool: number, opts: BalancerOptions) => Balancer;
