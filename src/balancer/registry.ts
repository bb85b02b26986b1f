// Owns the algorithm registry: config name -> balancer factory (HAProxy's lb_ops registration),
// and the table each algorithm needs laid out in the shared buffer (schedule.ts, ring.ts).

import type { Algorithm } from '../config/types.js';
import type { PoolLayout } from '../shared/layout.js';
import { ConsistentHash } from './consistent-hash.js';
import { Ewma } from './ewma.js';
import { LeastConnections } from './least-connections.js';
import { PowerOfTwo } from './p2c.js';
import { Random } from './random.js';
import { buildRing, ringWords } from './ring.js';
import { RoundRobin } from './round-robin.js';
import { scheduleTable } from './schedule.js';
import type { BalancerFactory } from './types.js';

export const balancers: Readonly<Record<Algorithm, BalancerFactory>> = Object.freeze({
  'round-robin': (state, pool, opts) => new RoundRobin(state, pool, opts.seed),
  'least-connections': (state, pool) => new LeastConnections(state, pool),
  random: (state, pool, opts) => new Random(state, pool, opts),
  p2c: (state, pool, opts) => new PowerOfTwo(state, pool, opts),
  ewma: (state, pool, opts) => new Ewma(state, pool, opts),
  'consistent-hash': (state, pool, opts) => new ConsistentHash(state, pool, opts),
});

/**
 * The shared-buffer layout of one pool for `algorithm`, from its backends in order. Backends are
 * identified by URL: the consistent-hash table places them by it, so a key keeps its backend
 * across reloads and in every process.
 */
export function poolLayout(algorithm: Algorithm, backends: readonly { readonly url: string; readonly weight: number }[]): PoolLayout {
  const weights = backends.map((b) => b.weight);
  const schedule = scheduleTable(weights);
  if (algorithm === 'consistent-hash') return { weights, table: [...schedule, ...ringWords(buildRing(backends.map((b) => b.url), weights))] };
  return { weights, table: schedule };
}
