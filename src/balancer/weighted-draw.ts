// Owns the random draws that `random`, `p2c` and `ewma` share (on the per-worker RandomStream):
// draws at random positions of the pool's weighted schedule (so weights apply without any
// per-pick arithmetic over the pool), slow-start thinning, and the linear-scan fallback.
// Nothing here allocates after construction; nothing throws.
//
// First draws are dealt from a per-worker deck of schedule positions, without replacement
// (an incremental Fisher-Yates shuffle: each run of `length` deals is a fresh random permutation).
// Independent draws would miss the weights by about 1/sqrt(n) (±1% over 10,000 picks is only
// 2 sigma); dealt ones match them exactly over every cycle, yet stay unpredictable and share no
// cursor between workers. Second draws (p2c's opponent) are independent, so any pair can meet.

import { BackendState, type SharedState } from '../shared/layout.js';
import { RandomStream } from './random-stream.js';
import { Schedule } from './schedule.js';
import { NONE, type BackendIndex, type PickContext } from './types.js';

/** Draws per candidate before giving up on randomness: enough that a pool with half its weight down rarely falls through (2^-8). */
export const DRAW_TRIES = 8;

/** Decks longer than this (huge, coprime weights) are not kept: first draws are then independent too. */
const DECK_MAX = 65536;

export class WeightedDraw extends RandomStream {
  private readonly state: SharedState;
  private readonly schedule: Schedule;
  private readonly length: number;
  readonly first: number;
  readonly count: number;
  /** Schedule positions; deck[0..dealt) are this cycle's deals so far. */
  private readonly deck: Uint16Array | null;
  private dealt = 0;

  constructor(state: SharedState, pool: number, seed: number) {
    super(seed);
    this.state = state;
    this.schedule = new Schedule(state, pool);
    this.length = this.schedule.length;
    this.first = state.poolFirstBackend(pool);
    this.count = state.poolBackendCount(pool);
    this.deck = this.length > 0 && this.length <= DECK_MAX ? new Uint16Array(this.length) : null;
    if (this.deck !== null) for (let k = 0; k < this.length; k++) this.deck[k] = k;
  }

  /** A backend drawn with probability weight / sum of weights (a random schedule position). */
  at(): BackendIndex {
    return this.length === 0 ? NONE : this.schedule.at(this.next() % this.length);
  }

  /** Like at(), but the next card of this worker's shuffled deck (weights exact per cycle). */
  deal(): BackendIndex {
    const deck = this.deck;
    if (deck === null) return this.at();
    const k = this.dealt;
    const j = k + (this.next() % (deck.length - k));
    const pos = deck[j]!;
    deck[j] = deck[k]!;
    deck[k] = pos;
    this.dealt = k + 1 === deck.length ? 0 : k + 1;
    return this.schedule.at(pos);
  }

  /** True when `i` belongs to this pool (guards indexes that come from outside, e.g. `avoid`, `observe`). */
  owns(i: BackendIndex): boolean {
    return i >= this.first && i < this.first + this.count;
  }

  /** A slow-starting backend keeps a draw with probability effective / full weight (as round-robin). */
  keeps(i: BackendIndex): boolean {
    return this.keepsSlowStartTurn(this.state, i);
  }

  /**
   * A candidate to compare (p2c, ewma): available, not full, not `avoid`, not `other`, and kept by
   * slow-start thinning. No slot is taken. NONE after DRAW_TRIES draws found none. The first
   * candidate (other = NONE) is dealt, the second drawn independently.
   */
  candidate(ctx: PickContext, other: BackendIndex): BackendIndex {
    for (let t = 0; t < DRAW_TRIES; t++) {
      const i = other === NONE ? this.deal() : this.at();
      if (i === NONE) return NONE;
      if (this.eligible(ctx, i, other)) return i;
    }
    // An opponent the draws kept missing (the first candidate holds most of the weight, or most
    // of the pool is down): any eligible one, from a random start, so a comparison still happens.
    if (other === NONE) return NONE;
    const { first, count } = this;
    const start = this.next() % count;
    for (let k = 0; k < count; k++) {
      const i = first + ((start + k) % count);
      if (this.eligible(ctx, i, other)) return i;
    }
    return NONE;
  }

  private eligible(ctx: PickContext, i: BackendIndex, other: BackendIndex): boolean {
    if (i === other || i === ctx.avoid) return false;
    const s = this.state.state(i);
    if (s !== BackendState.Up && s !== BackendState.SlowStart) return false;
    if (ctx.maxInflight > 0 && this.state.inflight(i) >= ctx.maxInflight) return false;
    return s !== BackendState.SlowStart || this.keeps(i);
  }

  /**
   * When random draws found nothing (most of the pool down or full): every backend once, from a
   * random start, ignoring weights and slow start; the one to avoid last. Takes the slot.
   */
  scan(ctx: PickContext): BackendIndex {
    const { state, first, count } = this;
    if (count === 0) return NONE;
    const start = this.next() % count;
    for (let k = 0; k < count; k++) {
      const i = first + ((start + k) % count);
      if (i === ctx.avoid || !state.available(i)) continue;
      if (state.tryAcquireInflight(i, ctx.maxInflight)) return i;
    }
    const avoid = ctx.avoid;
    if (this.owns(avoid) && state.available(avoid) && state.tryAcquireInflight(avoid, ctx.maxInflight)) return avoid;
    return NONE;
  }
}
