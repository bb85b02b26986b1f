// Owns the balancers' per-worker random numbers: an xorshift32 stream seeded through murmur3's
// finaliser (so workers 1, 2, 3... do not move in lock-step), and slow-start thinning, the one
// random decision every weighted algorithm shares. Allocation-free after construction.

import { WEIGHT_SCALE, type SharedState } from '../shared/layout.js';
import { fmix32 } from './hash.js';

export class RandomStream {
  private x: number;

  constructor(seed: number) {
    const h = fmix32(seed) | 0;
    // xorshift32 never leaves 0, so 0 must not be its state
    this.x = h === 0 ? 0x9e3779b9 | 0 : h;
  }

  /**
   * Next random number in [0, 2^31). 31 bits, not 32: a Signed32 value makes `%` an integer
   * modulo in optimised code, where a uint32 one takes V8's float fmod path (about 20 ns).
   */
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x;
    return x >>> 1;
  }

  /** A slow-starting backend keeps a turn (or draw) with probability effective / full weight. */
  keepsSlowStartTurn(state: SharedState, i: number): boolean {
    return this.next() % (state.weight(i) * WEIGHT_SCALE || 1) < state.effectiveWeight(i);
  }
}
