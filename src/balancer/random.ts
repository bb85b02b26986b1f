// Owns `random`: weighted random. Each pick deals a random position of the pool's weighted
// schedule (without replacement per worker, see weighted-draw.ts), so a backend is drawn with
// probability weight / total weight; down or full backends are drawn again (a bounded number of
// times, then a linear scan). Unlike round-robin it shares no cursor between workers: a pick
// writes no shared line but the chosen backend's in-flight counter.

import { BackendState, type SharedState } from '../shared/layout.js';
import { SCHEDULE_ONLY } from './schedule.js';
import { NONE, type AlgorithmSpec, type Balancer, type BackendIndex, type BalancerOptions, type PickContext } from './types.js';
import { DRAW_TRIES, WeightedDraw } from './weighted-draw.js';

export const random: AlgorithmSpec<'random'> = {
  ...SCHEDULE_ONLY,
  name: 'random',
  create: (state, pool, opts) => new Random(state, pool, opts),
};

export class Random implements Balancer {
  private readonly state: SharedState;
  private readonly draw: WeightedDraw;

  constructor(state: SharedState, pool: number, opts: BalancerOptions) {
    this.state = state;
    this.draw = new WeightedDraw(state, pool, opts.seed);
  }

  pick(ctx: PickContext): BackendIndex {
    const { state, draw } = this;
    let thinned = NONE; // a slow-starting backend that lost its draw, better than nothing
    for (let t = 0; t < DRAW_TRIES; t++) {
      const i = draw.deal();
      if (i === NONE) return NONE;
      if (i === ctx.avoid) continue; // scan() takes it only when nothing else is available
      const s = state.state(i);
      if (s !== BackendState.Up && s !== BackendState.SlowStart) continue;
      if (s === BackendState.SlowStart && !draw.keeps(i)) {
        thinned = i;
        continue;
      }
      if (state.tryAcquireInflight(i, ctx.maxInflight)) return i;
    }
    if (thinned !== NONE && state.tryAcquireInflight(thinned, ctx.maxInflight)) return thinned;
    return draw.scan(ctx);
  }

  observe(): void {
    // not latency-aware
  }
}
