// Owns the algorithm registry: config name -> balancer factory (HAProxy's lb_ops registration),
// and what each algorithm needs laid out in the shared buffer besides weights.

import type { Algorithm } from '../config/types.js';
import type { PoolLayout } from '../shared/layout.js';
import { ConsistentHash } from './consistent-hash.js';
import { LeastConnections } from './least-connections.js';
import { buildRing } from './ring.js';
import { RoundRobin } from './round-robin.js';
import type { BalancerFactory } from './types.js';

const notYet = (name: string): BalancerFactory => () => {
  throw new Error(`algorithm ${name} is not available yet`);
};

export const balancers: Readonly<Record<Algorithm, BalancerFactory>> = Object.freeze({
  'round-robin': (state, pool) => new RoundRobin(state, pool),
  'least-connections': (state, pool) => new LeastConnections(state, pool),
  random: notYet('random'),
  p2c: notYet('p2c'),
  ewma: notYet('ewma'),
  'consistent-hash': (state, pool, opts) => new ConsistentHash(state, pool, opts),
});

/**
 * The shared-buffer layout of one pool for `algorithm`, from its backends in order. Backends are
 * identified by URL: the consistent-hash table places them by it, so a key keeps its backend
 * across reloads and in every process.
 */
export function poolLayout(algorithm: Algorithm, backends: readonly { readonly url: string; readonly weight: number }[]): PoolLayout {
  const weights = backends.map((b) => b.weight);
  if (algorithm === 'consistent-hash') return { weights, ring: buildRing(backends.map((b) => b.url), weights) };
  return { weights };
}
