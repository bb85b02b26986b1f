// Owns the balancer interface: every algorithm picks a backend of one pool from shared state,
// lock-free, without allocating.

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
}

export interface Balancer {
  /**
   * Returns an available backend of the pool and holds one in-flight slot on it (release it with
   * `state.releaseInflight` when the request ends), or NONE when every backend is down or full.
   */
  pick(ctx: PickContext): BackendIndex;
}

export type BalancerFactory = (state: SharedState, pool: number) => Balancer;
