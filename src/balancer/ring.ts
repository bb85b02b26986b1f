// Owns the hash ring of a consistent-hash pool (Karger et al.; ketama's virtual nodes): the primary
// builds it at layout time (pure) and writes it into the pool's table in the shared buffer;
// workers binary-search it there (RingReader) for a key's hash and walk clockwise from there.
//
// Each backend owns `points` positions on a 32-bit ring, hashed from its identity (its URL,
// stable across reloads and processes) and the point's number, in proportion to its weight.
// A point's position depends on its own backend only, so removing a backend takes exactly its
// points away (only its keys move) and adding one inserts only its points (keys move only to it).
// A lookup table (Maglev's) would be O(1) per lookup but moves ~0.3% of other backends' keys on a
// change; the ring's O(log points) search is the price of "a removed backend moves only its own keys".
//
// In the table, from the word the algorithm gives: the owners (positions within the pool), then
// the points (unsigned 32-bit positions, ascending); both run to the end of the pool's table.

import type { SharedState } from '../shared/layout.js';
import { hashString } from './hash.js';
import type { BackendIndex } from './types.js';

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

/** The table words of `ring`: owners, then points. */
export function ringWords(ring: Ring): number[] {
  return [...ring.owners, ...ring.points];
}

/** A worker's reader of the ring laid out (ringWords) from word index `start` to the end of the pool's table. */
export class RingReader {
  /** Points on the ring (0 when it is empty). */
  readonly length: number;
  private readonly words: Int32Array;
  private readonly uwords: Uint32Array;
  private readonly owners: number;
  private readonly points: number;
  private readonly first: number;

  constructor(state: SharedState, pool: number, start: number) {
    const end = state.poolTable(pool) + state.poolTableLength(pool);
    this.length = Math.max(0, (end - start) >> 1);
    this.words = state.words;
    this.uwords = state.uwords;
    this.owners = start;
    this.points = start + this.length;
    this.first = state.poolFirstBackend(pool);
  }

  /** Backend index owning point `k` (0 <= k < length). */
  owner(k: number): BackendIndex {
    return this.first + this.words[this.owners + k]!;
  }

  /**
   * First point at or after `hash` (unsigned), wrapping to 0 past the last: a binary search over
   * the ascending points, O(log points), no allocation.
   */
  search(hash: number): number {
    const { uwords, points } = this;
    const n = this.length;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (uwords[points + mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === n ? 0 : lo;
  }
}
