// Owns `p2c`: power of two choices. Two weighted random draws of distinct available backends;
// the one with fewer in-flight requests (across all workers) per effective weight wins, ties go
// to the first draw. Comparing two instead of scanning all keeps a pick O(1) and, unlike
// least-connections, stops every worker from piling onto the same momentarily-idlest backend.
// With no load (all in-flight counts 0) every comparison ties, so shares follow the weights.

import type { SharedState } from '../shared/layout.js';
import { SCHEDULE_ONLY } from './schedule.js';
import { NONE, type AlgorithmSpec, type Balancer, type BackendIndex, type BalancerOptions, type PickContext } from './types.js';
import { WeightedDraw } from './weighted-draw.js';

export const p2c: AlgorithmSpec<'p2c'> = {
  ...SCHEDULE_ONLY,
  name: 'p2c',
  create: (state, pool, opts) => new PowerOfTwo(state, pool, opts),
};

/**
 * The P2C template: ewma (ewma.ts) is this class with another `cheaper`, as undici's dispatchers
 * differ in one picker.
 */
export class PowerOfTwo implements Balancer {
  protected readonly state: SharedState;
  protected readonly draw: WeightedDraw;

  constructor(state: SharedState, pool: number, opts: BalancerOptions) {
    this.state = state;
    this.draw = new WeightedDraw(state, pool, opts.seed);
  }

  /**
   * True when `b` should win over `a`: inflight(b) / weight(b) < inflight(a) / weight(a), without
   * division. An idle `a` cannot lose, so the other three shared reads (about 17 ns each:
   * Atomics.load is a call on Node 20) are skipped in the common unloaded case.
   */
  protected cheaper(b: BackendIndex, a: BackendIndex): boolean {
    const state = this.state;
    const ia = state.inflight(a);
    return ia > 0 && state.inflight(b) * state.effectiveWeight(a) < ia * state.effectiveWeight(b);
  }

  pick(ctx: PickContext): BackendIndex {
    const { state, draw } = this;
    // Another worker may fill the winner between the comparison and the acquire: draw again,
    // a bounded number of times, then fall back to the scan.
    for (let attempt = 0; attempt < 4; attempt++) {
      const a = draw.candidate(ctx, NONE);
      if (a === NONE) break;
      const b = draw.candidate(ctx, a);
      let win = a;
      let lose = b;
      if (b !== NONE && this.cheaper(b, a)) {
        win = b;
        lose = a;
      }
      if (state.tryAcquireInflight(win, ctx.maxInflight)) return win;
      if (lose !== NONE && state.tryAcquireInflight(lose, ctx.maxInflight)) return lose;
    }
    return draw.scan(ctx);
  }

  observe(_backend: BackendIndex, _ms: number): void {
    // not latency-aware
  }
}
