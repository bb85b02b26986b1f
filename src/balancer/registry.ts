// Owns the algorithm registry: config name -> balancer factory (HAProxy's lb_ops registration),
// and what each algorithm needs laid out in the shared buffer besides weights.

import type { Algorithm } from '../config/types.js';
import type { PoolLayout } from '../shared/layout.js';
import { Ewma } from './ewma.js';
import { LeastConnections } from './least-connections.js';
import { PowerOfTwo } from './p2c.js';
import { Random } from './random.js';
import { RoundRobin } from './round-robin.js';
import type { BalancerFactory } from './types.js';

const notYet = (name: string): BalancerFactory => () => {
  throw new Error(`algorithm ${name} is not available yet`);
};

export const balancers: Readonly<Record<Algorithm, BalancerFactory>> = Object.freeze({
  'round-robin': (state, pool) => new RoundRobin(state, pool),
  'least-connections': (state, pool) => new LeastConnections(state, pool),
  random: (state, pool, opts) => new Random(state, pool, opts),
  p2c: (state, pool, opts) => new PowerOfTwo(state, pool, opts),
  ewma: (state, pool, opts) => new Ewma(state, pool, opts),
  'consistent-hash': notYet('consistent-hash'),
});

/** The shared-buffer layout of one pool for `algorithm`. */
export function poolLayout(algorithm: Algorithm, weights: readonly number[]): PoolLayout {
  return { weights };
}
