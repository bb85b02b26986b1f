// Owns the balancer interfaces: AlgorithmSpec, what one algorithm file exports (HAProxy's lb_ops:
// its request inputs, its config options, its table in the shared buffer, its balancer), and
// Balancer, which picks a backend of one pool from shared state, lock-free, without allocating.

import type { PoolConfig } from '../config/types.js';
import type { Entries, Walk } from '../config/walk.js';
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

/** What a pool's requests must provide before its algorithm picks. */
export interface AlgorithmNeeds {
  /** PickContext.hash: the hash of the request's key (the pool's `hashKey`), or -1 without one. */
  readonly key: boolean;
  /** The client's address (uWS reads it with a getpeername() per request, so only on demand). */
  readonly clientAddress: boolean;
}
export const NEEDS_NOTHING: AlgorithmNeeds = Object.freeze({ key: false, clientAddress: false });

/** A backend as the primary lays out its pool: its identity (URL, stable across reloads) and weight. */
export interface LayoutBackend {
  readonly url: string;
  readonly weight: number;
}

/** The settings of an algorithm without options. */
export type NoSettings = Record<never, never>;

/**
 * One balancing algorithm, whole: the registry lists these, and nothing outside src/balancer/
 * decides anything by an algorithm's name. `Settings` are the PoolConfig fields it owns.
 */
export interface AlgorithmSpec<Name extends string = string, Settings extends object = NoSettings> {
  /** The `algorithm:` value in the config. */
  readonly name: Name;
  /** What each request of `pool` must provide. */
  needs(pool: PoolConfig): AlgorithmNeeds;
  /** The pool keys only this algorithm reads; on a pool of another algorithm they are a problem. */
  readonly optionKeys: readonly string[];
  /** Its settings on a pool of another algorithm (every pool has every field). */
  readonly unused: Settings;
  /**
   * Its settings from `fields` (those of its keys that the pool sets), defaults for the rest.
   * Problems go to `walk`, located at the field; the values are checked even on a pool of
   * another algorithm (then the result is dropped).
   */
  options(walk: Walk, fields: Entries): Settings;
  /** The pool's table words for the shared buffer (see layout.ts), from its backends in order. */
  layout(backends: readonly LayoutBackend[]): readonly number[];
  /** The balancer of `pool` over a buffer laid out with `layout`. */
  create(state: SharedState, pool: number, opts: BalancerOptions): Balancer;
}
