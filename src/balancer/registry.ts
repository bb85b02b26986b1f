// Owns the algorithm registry: the list of AlgorithmSpecs (HAProxy's lb_ops registration). The
// config's algorithm names, their order in messages, the default, the settings every pool
// carries and the option keys all derive from this list: an algorithm is one file and one line here.

import type { PoolLayout } from '../shared/layout.js';
import { consistentHash } from './consistent-hash.js';
import { ewma } from './ewma.js';
import { leastConnections } from './least-connections.js';
import { p2c } from './p2c.js';
import { random } from './random.js';
import { roundRobin } from './round-robin.js';
import type { AlgorithmSpec, BalancerFactory, LayoutBackend } from './types.js';

/** In the order the config lists them; the first is the default. */
export const ALGORITHM_SPECS = [
  roundRobin,
  leastConnections,
  random,
  p2c,
  ewma,
  consistentHash,
] as const;

type Spec = (typeof ALGORITHM_SPECS)[number];
type SettingsOf<S> = S extends AlgorithmSpec<string, infer T> ? T : never;
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** An `algorithm:` value. */
export type Algorithm = Spec['name'];
/** The PoolConfig fields the algorithms own, every one on every pool (`unused` on the others'). */
export type AlgorithmSettings = Intersection<SettingsOf<Spec>>;

export const ALGORITHMS: readonly Algorithm[] = Object.freeze(ALGORITHM_SPECS.map((s) => s.name));
export const DEFAULT_ALGORITHM: Algorithm = ALGORITHM_SPECS[0].name;

/**
 * The pool keys that some algorithm owns: grouped by algorithm, algorithms in alphabetical order
 * (a fixed order for `allowed keys` messages that does not depend on this list's order).
 */
export const ALGORITHM_OPTION_KEYS: readonly string[] = Object.freeze(
  [...ALGORITHM_SPECS].sort((a, b) => (a.name < b.name ? -1 : 1)).flatMap((s) => s.optionKeys),
);

export function algorithmSpec(name: Algorithm): AlgorithmSpec {
  const spec: AlgorithmSpec | undefined = ALGORITHM_SPECS.find((s) => s.name === name);
  if (spec === undefined) throw new Error(`unknown algorithm ${JSON.stringify(name)}`);
  return spec;
}

/** Balancer factories by name (one call of each algorithm's `create`). */
export const balancers: Readonly<Record<Algorithm, BalancerFactory>> = Object.freeze(
  Object.fromEntries(ALGORITHM_SPECS.map((s) => [s.name, s.create])) as Record<Algorithm, BalancerFactory>,
);

/** The shared-buffer layout of one pool for `algorithm`, from its backends in order. */
export function poolLayout(algorithm: Algorithm, backends: readonly LayoutBackend[]): PoolLayout {
  return { weights: backends.map((b) => b.weight), table: algorithmSpec(algorithm).layout(backends) };
}
