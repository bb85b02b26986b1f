// Owns the weighted schedule that most algorithms read: nginx's smooth weighted round-robin run
// over one whole cycle, built by the primary at the head of the pool's table, read by workers
// with one shared cursor in the pool's slot (global across workers).
//
// In the table: word 0 is the cycle length L, words 1..L the backends' positions within the pool.
// Positions rather than global indexes keep the table independent of where the pool's backends
// are numbered; a reader adds the pool's first index (one add per read). An algorithm that needs
// more table words (a hash ring) lays them out after the schedule, from `Schedule.end`.

import type { SharedState } from '../shared/layout.js';
import { NEEDS_NOTHING, type BackendIndex, type LayoutBackend } from './types.js';

/** Word of the pool's slot that holds the shared cursor. */
const CURSOR = 0;

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * nginx's smooth weighted round-robin, run once over a whole cycle: weights 5:1:1 give
 * a a b a c a a. The cycle is sum of weights / gcd long. Returns positions within the pool (0-based).
 */
export function smoothSchedule(weights: readonly number[]): number[] {
  let g = 0;
  let sum = 0;
  for (const w of weights) {
    g = gcd(g, w);
    sum += w;
  }
  const length = g === 0 ? 0 : sum / g;
  const eff = weights.map((w) => w / g);
  const current = new Array<number>(weights.length).fill(0);
  const out: number[] = [];
  for (let n = 0; n < length; n++) {
    let best = -1;
    for (let i = 0; i < eff.length; i++) {
      current[i]! += eff[i]!;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= length;
    out.push(best);
  }
  return out;
}

/** The table words of a pool's schedule: its length, then the cycle. */
export function scheduleTable(weights: readonly number[]): number[] {
  const cycle = smoothSchedule(weights);
  return [cycle.length, ...cycle];
}

/** A worker's reader of one pool's schedule (the table is read-only once laid out). */
export class Schedule {
  /** Positions in the cycle (0 when the pool has no schedule). */
  readonly length: number;
  /** Word index just past the schedule: where the algorithm's own table words start. */
  readonly end: number;
  private readonly words: Int32Array;
  private readonly uwords: Uint32Array;
  private readonly base: number;
  private readonly first: number;
  private readonly cursor: number;

  constructor(state: SharedState, pool: number) {
    const table = state.poolTable(pool);
    this.words = state.words;
    this.uwords = state.uwords;
    this.length = state.poolTableLength(pool) > 0 ? state.words[table]! : 0;
    this.base = table + 1;
    this.end = this.base + this.length;
    this.first = state.poolFirstBackend(pool);
    this.cursor = state.poolSlot(pool) + CURSOR;
  }

  /** Backend index at `pos` (0 <= pos < length). */
  at(pos: number): BackendIndex {
    return this.first + this.words[this.base + pos]!;
  }

  /** Take the next position of the pool's shared cursor (unsigned, wraps at 2^32). */
  nextCursor(): number {
    return Atomics.add(this.uwords, this.cursor, 1);
  }
}

/** The pool's table of an algorithm that only needs the schedule. */
export function layoutSchedule(backends: readonly LayoutBackend[]): number[] {
  return scheduleTable(backends.map((b) => b.weight));
}

/** The spec parts of an algorithm that reads the schedule and nothing else: no request inputs, no options. */
export const SCHEDULE_ONLY = Object.freeze({
  needs: () => NEEDS_NOTHING,
  optionKeys: [],
  unused: {},
  options: () => ({}),
  layout: layoutSchedule,
});
