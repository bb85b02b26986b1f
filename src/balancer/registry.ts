// Owns the algorithm registry: config name -> balancer factory (HAProxy's lb_ops registration).

import type { Algorithm } from '../config/types.js';
import { LeastConnections } from './least-connections.js';
import { RoundRobin } from './round-robin.js';
import type { BalancerFactory } from './types.js';

export const balancers: Readonly<Record<Algorithm, BalancerFactory>> = Object.freeze({
  'round-robin': (state, pool) => new RoundRobin(state, pool),
  'least-connections': (state, pool) => new LeastConnections(state, pool),
});
