// Owns the hash ring of a consistent-hash pool (Karger et al.; ketama's virtual nodes). Pure and
// primary-side: the primary builds the ring at layout time and writes it into the shared buffer;
// workers binary-search it for a key's hash and walk clockwise from there.
//
// Each backend owns `points` positions on a 32-bit ring, hashed from its identity (its URL,
// stable across reloads and processes) and the point's number, in proportion to its weight.
// A point's position depends on its own backend only, so removing a backend takes exactly its
// points away (only its keys move) and adding one inserts only its points (keys move only to it).
// A Maglev table would be O(1) per lookup but moves ~0.3% of other backends' keys on a change;
// the ring's O(log points) search is the price of "a removed backend moves only its own keys".

import { hashString } from './hash.js';

/** Points per unit of (gcd-reduced) weight, at most: ~1,000 keeps each share within ~3% of its weight. */
const MAX_POINTS_PER_WEIGHT = 1000;
/** Points per unit of weight, at least, however big the pool. */
const MIN_POINTS_PER_WEIGHT = 40;
/** Ring size the points per weight are scaled to for big pools (1.6 MB of shared buffer as pairs). */
const TARGET_POINTS = 200_000;

export interface Ring {
  /** Point positions, ascending (unsigned 32-bit). */
  readonly points: readonly number[];
  /** Owner of each point: the backend's position within the pool. */
  readonly owners: readonly number[];
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Points per unit of reduced weight for a pool whose reduced weights sum to `total`. */
export function pointsPerWeight(total: number): number {
  if (total <= 0) return 0;
  return Math.max(MIN_POINTS_PER_WEIGHT, Math.min(MAX_POINTS_PER_WEIGHT, Math.floor(TARGET_POINTS / total)));
}

/**
 * The ring of `ids` / `weights`. Deterministic: the same ids and weights give the same ring in
 * every process. A backend of weight 0 gets no points; with no positive weight the ring is empty.
 */
export function buildRing(ids: readonly string[], weights: readonly number[]): Ring {
  if (ids.length !== weights.length) throw new Error('buildRing: one weight per id');
  let g = 0;
  for (const w of weights) if (w > 0) g = gcd(g, Math.floor(w));
  if (g === 0) return { points: [], owners: [] };
  let total = 0;
  for (const w of weights) total += Math.max(0, Math.floor(w)) / g;
  const per = pointsPerWeight(total);
  const pairs: [number, number][] = [];
  ids.forEach((id, owner) => {
    const n = (Math.max(0, Math.floor(weights[owner]!)) / g) * per;
    // the point number goes into the hashed text (not only the seed), so points of one backend
    // are as independent as points of different ones
    for (let j = 0; j < n; j++) pairs.push([hashString(`${id}#${j}`), owner]);
  });
  // equal positions (rare) are ordered by owner, so every process builds the same ring
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { points: pairs.map((p) => p[0]), owners: pairs.map((p) => p[1]) };
}
