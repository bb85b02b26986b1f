// Owns the Maglev lookup table of a consistent-hash pool (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI'16, section 3.4). Pure and primary-side: the
// primary builds the table at layout time and writes it into the shared buffer; workers only
// read `table[hash % M]`.
//
// Each backend has a permutation of the M positions, derived from two hashes of its identity
// (its URL, stable across reloads and processes): offset = h1 % M, skip = h2 % (M - 1) + 1,
// permutation[j] = (offset + j * skip) % M. M is prime, so every skip visits every position.
// Backends take turns claiming the next free position of their own permutation until the table
// is full. Because a backend's preferences do not depend on who else is in the pool, adding or
// removing one backend moves few other backends' positions (the paper's "minimal disruption").
//
// Weighted (the paper's weighted variant): a backend of weight w takes w turns per round, so its
// share of entries is w / (sum of weights), to within w entries of M.

import { hashString } from './hash.js';

/** Prime sizes, smallest first; the table takes the first one with at least 100 entries per backend. */
const SIZES = [4099, 16411, 65537, 262147, 1048573] as const;
const LARGEST = 1048573;

/** Seeds of the two identity hashes (any two different values; fixed forever: they place keys). */
const SEED_OFFSET = 0;
const SEED_SKIP = 0x5bd1e995;

/**
 * Table size for a pool of `backends`: a prime >= 100 x backends (the paper's guidance, which
 * keeps each backend's share within about 1% and disruption near the ideal), up to 1,048,573
 * (4 MiB of shared buffer) for pools of more than 10,485 backends.
 */
export function maglevTableSize(backends: number): number {
  for (const m of SIZES) if (m >= 100 * backends) return m;
  return LARGEST;
}

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * Maglev table of `size` entries: positions (0-based, within the pool) of `ids` / `weights`.
 * Deterministic: the same ids, weights and size give the same table in every process. A backend
 * of weight 0 gets no entries; with no positive weight the table is empty.
 */
export function buildMaglevTable(ids: readonly string[], weights: readonly number[], size = maglevTableSize(ids.length)): number[] {
  if (ids.length !== weights.length) throw new Error('buildMaglevTable: one weight per id');
  if (!isPrime(size)) throw new Error(`buildMaglevTable: size ${size} is not prime`);
  const n = ids.length;
  const offset = new Array<number>(n);
  const skip = new Array<number>(n);
  const next = new Array<number>(n).fill(0); // how far each backend has walked its permutation
  let turnsPerRound = 0;
  for (let i = 0; i < n; i++) {
    offset[i] = hashString(ids[i]!, SEED_OFFSET) % size;
    skip[i] = (hashString(ids[i]!, SEED_SKIP) % (size - 1)) + 1;
    turnsPerRound += Math.max(0, Math.floor(weights[i]!));
  }
  if (turnsPerRound === 0) return [];
  const entry = new Int32Array(size).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const turns = Math.max(0, Math.floor(weights[i]!));
      for (let t = 0; t < turns; t++) {
        // next free position of i's permutation; a full cycle exists because size is prime
        let c = (offset[i]! + next[i]! * skip[i]!) % size;
        while (entry[c] !== -1) {
          next[i]!++;
          c = (offset[i]! + next[i]! * skip[i]!) % size;
        }
        entry[c] = i;
        next[i]!++;
        if (++filled === size) return Array.from(entry);
      }
    }
  }
}
